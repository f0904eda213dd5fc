"""The headset on Linux: QMediaDevices for the devices, PulseAudio's own streams for the call.

QtBackend lists devices, follows hot-plug and plays the ringer; only the call's two streams
differ. Each is a `PulseStream` moved by its own plain thread, paced by the device: the
capture thread blocks in `pa_simple_read` for the next 10 ms block and queues it in the mic
ring; the playback thread takes 10 ms from the speaker ring (silence while it is short) and
blocks in `pa_simple_write` until the server has room. No timer, no Qt signal per block, and
the server keeps only `PLAYBACK_MS` queued. Measured against the Qt streams in
docs/architecture.md ("Phone audio").

The threads touch only their stream and their ring; a stream is closed by its own thread
when it stops, never under a read or a write on another thread.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future

from softphone.backend import AudioError
from softphone.backend_qt import Listener, QtBackend
from softphone.pulse_simple import PulseError, PulseStream
from softphone.ringbuffer import RingBuffer

log = logging.getLogger(__name__)


class _StreamThread(threading.Thread):
    """Moves 16-bit PCM between one PulseStream and one ring until stopped."""

    def __init__(
        self,
        stream: PulseStream,
        ring: RingBuffer,
        block: int,
        on_error: Callable[[str], None],
    ) -> None:
        kind = "capture" if stream.record else "playback"
        super().__init__(name=f"pulse-{kind}", daemon=True)
        self.stream = stream
        self.ring = ring
        self.block = block
        self.on_error = on_error
        self.stopping = threading.Event()
        self.failed = False  # the stream broke under it (not asked to stop)

    def run(self) -> None:
        buf = (ctypes.c_char * self.block)()
        addr, n = ctypes.addressof(buf), self.block
        stream, ring = self.stream, self.ring
        try:
            if stream.record:
                while not self.stopping.is_set():
                    stream.read_into(addr, n)
                    if self.stopping.is_set():  # the ring may belong to a new stream now
                        break
                    ring.write_from(addr, n)
            else:
                # Push what the bridge gave as soon as it is there: the server's buffer is
                # the one jitter buffer on the way out (as in pacat), the ring stays empty.
                written = ring.written = threading.Event()
                while not self.stopping.is_set():
                    written.wait(0.1)
                    written.clear()
                    got = ring.drain_into(addr, n)
                    while got and not self.stopping.is_set():
                        stream.write_from(addr, got)
                        got = ring.drain_into(addr, n)
        except PulseError as exc:
            if not self.stopping.is_set():
                self.failed = True
                log.warning("%s", exc)
                self.on_error(str(exc))
        finally:
            stream.close()

    def stop(self) -> None:
        """Ask the thread to end after the block it is waiting for, and return at once.

        Not joined: a device that has not started yet (a null sink takes up to 2 s to take
        its first block) or a server that stopped answering would hold the caller, and the
        caller is the Qt audio thread the engine waits on. The thread closes its own stream
        when its read or write returns; it touches its ring no more once asked to stop.
        """
        self.stopping.set()


class PulseBackend(QtBackend):
    """QtBackend whose call audio goes through libpulse-simple (Linux, PulseAudio/PipeWire)."""

    name = "pulse"
    #: Capture arrives in 10 ms blocks and the bridge takes 20 ms: start at 30 ms, keep at
    #: most 10 standing. Playback is read in 10 ms blocks on the device's clock while the
    #: bridge writes 20 ms: the same margins.
    mic_ring_ms = (20, 5)
    speaker_ring_ms = (20, 5)
    CAPTURE_MS = 10  # the size of the pieces PulseAudio delivers (fragsize)
    PLAYBACK_MS = 20  # what the server keeps queued for the device (tlength)
    #: Never under 640 bytes: at 8 kHz a 20 ms (320-byte) buffer ran dry between the
    #: bridge's ticks and cost PCMU speech 0.1-0.2 MOS (bench_phone_pesq), as Qt's sink did.
    PLAYBACK_MIN_BYTES = 640
    BLOCK_MS = 10

    def __init__(
        self, clock_rate: int, frame_ms: int = 20, listener: Listener | None = None
    ) -> None:
        self._capture_thread: _StreamThread | None = None
        self._playback_thread: _StreamThread | None = None
        super().__init__(clock_rate, frame_ms, listener)
        self._block = clock_rate * 2 * self.BLOCK_MS // 1000

    # Runs on the Qt audio thread (QtBackend's requests and hot-plug) ---------------------
    def _open_capture(self, ring: RingBuffer) -> None:
        self._close_capture()
        self._mic_ring = ring  # kept if the open fails: a device choice or hot-plug retries
        dev = self._chosen("capture")
        try:
            stream = PulseStream(
                True, self.clock_rate, dev, self.CAPTURE_MS, name="Call microphone"
            )
        except PulseError as exc:
            raise AudioError(str(exc)) from exc
        self._capture_thread = _StreamThread(stream, ring, self._block, self._stream_failed)
        self._capture_thread.start()
        self._capturing = True
        log.info("capture from %s (PulseAudio)", dev or "the default source")

    def _close_capture(self) -> None:
        thread, self._capture_thread = self._capture_thread, None
        if thread is not None:
            thread.stop()
            log.info("capture closed")
        self._mic_ring = None
        self._capturing = False

    def _open_playback(self, ring: RingBuffer) -> None:
        self._close_playback()
        self._spk_ring = ring  # as for capture
        dev = self._chosen("playback")
        try:
            ms = max(self.PLAYBACK_MS, self.PLAYBACK_MIN_BYTES * 1000 // (self.clock_rate * 2))
            stream = PulseStream(False, self.clock_rate, dev, ms, name="Call audio")
        except PulseError as exc:
            raise AudioError(str(exc)) from exc
        self._playback_thread = _StreamThread(
            stream, ring, self.frame_bytes * 2, self._stream_failed
        )
        self._playback_thread.start()
        log.info("playback into %s (PulseAudio)", dev or "the default sink")

    def _close_playback(self) -> None:
        thread, self._playback_thread = self._playback_thread, None
        if thread is not None:
            thread.stop()
        self._spk_ring = None

    def _pump_playback(self) -> None:
        """Nothing to pump: the playback thread is paced by the device."""

    def _chosen(self, kind: str) -> str | None:
        """The PulseAudio name of the chosen device when it is present; None (the server's
        default, which follows the desktop's choice) when none was chosen or it is gone."""
        wanted = self._capture_name if kind == "capture" else self._playback_name
        if not wanted:
            return None
        for dev in self._devices()[kind]:
            if wanted in (dev.id, dev.name):
                return dev.id
        log.warning("audio device %r not found; using the default", wanted)
        return None

    def _stream_failed(self, message: str) -> None:
        """A stream thread's stream failed (killed from the sound settings, the server
        restarted): tell the agent and open it again on the Qt thread, where streams are
        opened; the call stays up. If that fails too, the agent is told that as well; the
        next hot-plug event or device choice tries again."""
        if self.listener is not None:
            self.listener("error", {"code": "audio_error", "message": message})
        self._requests.put((self._reopen, Future()))
        self._wake()

    def _reopen(self) -> None:
        for ring, opened, open_fn in (
            (self._mic_ring, self._capture_thread, self._open_capture),
            (self._spk_ring, self._playback_thread, self._open_playback),
        ):
            if ring is None or opened is None or not opened.failed:
                continue  # closed meanwhile, or already replaced
            try:
                open_fn(ring)
            except AudioError as exc:
                log.warning("%s", exc)
                if self.listener is not None:
                    self.listener("error", {"code": "audio_error", "message": str(exc)})
