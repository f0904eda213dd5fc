"""The headset on Linux: QMediaDevices for the devices, PulseAudio's own streams for the call.

QtBackend lists devices, follows hot-plug and plays the ringer; only the call's two streams
differ. Each is a `PulseStream` moved by its own plain thread: the capture thread blocks in
`pa_simple_read` for the next 10 ms block (paced by the device) and queues it in the mic
ring; the playback thread sleeps until the bridge writes a frame into the speaker ring and
pushes it at once, so PulseAudio's buffer (`PLAYBACK_MS`) is the one jitter buffer on the way
out, as in `pacat`. No timer, no Qt signal per block. Measured against the Qt streams in
docs/architecture.md ("Phone audio").

The threads touch only their stream and their ring; a stream is closed by its own thread
when it stops, never under a read or a write on another thread.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections.abc import Callable

from softphone.backend import AudioError
from softphone.backend_qt import Listener, QtBackend, device_id
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
    #: Capture arrives in 10 ms blocks on the device's clock and the bridge takes 20 ms:
    #: start at 20 ms, keep at most 5 standing (30/10 measured ~4 ms more mouth-to-ear and
    #: no fewer underruns). Playback drains the ring as soon as the bridge writes, so what
    #: stands there longer than 5 ms is standing.
    mic_ring_ms = (20, 5)
    speaker_ring_ms = (20, 5)
    CAPTURE_MS = 10  # the size of the pieces PulseAudio delivers (fragsize), and our reads
    PLAYBACK_MS = 20  # what the server keeps queued for the device (tlength)
    #: Never under 640 bytes: at 8 kHz a 20 ms (320-byte) buffer ran dry between the
    #: bridge's ticks and cost PCMU speech 0.1-0.2 MOS (bench_phone_pesq), as Qt's sink did.
    PLAYBACK_MIN_BYTES = 640

    def __init__(
        self, clock_rate: int, frame_ms: int = 20, listener: Listener | None = None
    ) -> None:
        self._capture_thread: _StreamThread | None = None
        self._playback_thread: _StreamThread | None = None
        super().__init__(clock_rate, frame_ms, listener)

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
        block = self.clock_rate * 2 * self.CAPTURE_MS // 1000
        self._capture_thread = _StreamThread(stream, ring, block, self._stream_failed)
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
        dev = self._device(kind, fallback=False)
        return None if dev.isNull() else device_id(dev)

    def _stream_failed(self, message: str) -> None:
        """A stream thread's stream failed (the sound server restarted): tell the agent and
        open it again on the Qt thread, where streams are opened; the call stays up. If that
        fails too, the agent is told that as well; the next hot-plug event or device choice
        tries again."""
        self._tell_error(message)
        self._post(self._reopen_failed)

    def _reopen_failed(self) -> None:
        if self._capture_thread is not None and self._capture_thread.failed:
            assert self._mic_ring is not None  # set while a capture thread exists
            self._try_open(self._mic_ring, self._open_capture)
        if self._playback_thread is not None and self._playback_thread.failed:
            assert self._spk_ring is not None
            self._try_open(self._spk_ring, self._open_playback)
