"""The headset on Linux: QMediaDevices for the devices, PulseAudio's own streams for the call.

QtBackend lists devices, follows hot-plug and plays the ringer; only the call's two streams
differ. They are libpulse streams on one `PulseContext` (softphone.pulse_client) and no
thread of ours moves them: the bridge's media clock does, on its 20 ms tick (`clocked`).
Before it reads a frame from the mic ring it pulls what the microphone delivered (in the
source's own pieces: 5 ms from the tests' null sources); after it writes a frame into the
speaker ring it pushes the ring into the server's 40 ms buffer, the one jitter buffer on the
way out. Measured against the thread-per-stream version and the Qt streams in
docs/architecture.md ("The Linux default").

With the native port (softphone/native, the default when it is built) the same pull and
push run in C: each stream is attached to the port when it opens and detached before it
closes (the port's own lock: when `detach` returns, no tick touches the stream), and
`pull_capture`/`push_playback` here serve the Python port only.

Streams are opened and closed on the Qt audio thread (QtBackend's requests and hot-plug
slots); the clock reads `_capture`/`_playback` once per tick and each stream call takes the
mainloop's lock, under which `close` also runs, so a tick never touches a freed stream.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

from softphone.backend import AudioError, Ring
from softphone.backend_qt import Listener, QtBackend, device_id
from softphone.native.port import CAPTURE, PLAYBACK, NativePort
from softphone.pulse_client import (
    STALLED_TICKS,
    PulseContext,
    PulseError,
    PulseFaultError,
    PulseStream,
)

log = logging.getLogger(__name__)


class PulseBackend(QtBackend):
    """QtBackend whose call audio goes through libpulse (Linux, PulseAudio/PipeWire)."""

    name = "pulse"
    clocked = True
    #: Capture arrives in pieces of 5-10 ms and the bridge takes 20 ms: start at 20 ms, keep at
    #: most 5 standing (30/10 measured ~4 ms more mouth-to-ear and no fewer underruns).
    #: Playback drains the ring into the server on every tick, so what stands there longer
    #: than 5 ms is standing.
    mic_ring_ms = (20, 5)
    speaker_ring_ms = (20, 5)
    #: Capture `fragsize`: the most the server holds back before sending (a source may send
    #: smaller pieces; the tests' null sources send 5 ms).
    CAPTURE_MS = 10
    #: Playback: the server's buffer (`tlength`) holds two frames, and the device starts (or
    #: starts again after running dry) once `PREBUF_MS` are queued. After that the speaker
    #: ring holds the queue at its 5 ms target before each push, from the server's own
    #: count (PulseStream._queued, RingBuffer.drain_into's `downstream`). Measured on the
    #: latency bench before that control: prebuf 20 ms, 1.14x the floor but 13-43 underruns
    #: per call (each a gap the agent hears); 25 ms, 1.11-1.29x and 1-3; with it, 0-1.
    PLAYBACK_MS = 40
    PREBUF_MS = 25
    PULSE_LATENCY_MSEC = None  # our streams say their own sizes; the ringer needs none

    def __init__(
        self, clock_rate: int, frame_ms: int = 20, listener: Listener | None = None
    ) -> None:
        self._context: PulseContext | None = None
        # (stream, ring) pairs: one attribute, read once per tick by the media clock.
        self._capture: tuple[PulseStream, Ring] | None = None
        self._playback: tuple[PulseStream, Ring] | None = None
        self._scratch_size = clock_rate * 2 * frame_ms // 1000 * 4
        self._scratch = (ctypes.c_char * self._scratch_size)()
        self._scratch_addr = ctypes.addressof(self._scratch)
        self._reopen_due = False
        self._native: NativePort | None = None  # set by the bridge before a stream opens
        super().__init__(clock_rate, frame_ms, listener)

    # The native port (softphone/native): it moves the streams on the tick ----------------
    def attach_native(self, port: NativePort) -> None:
        """From now on the C port moves the streams: each is handed to it when opened and
        taken back before it is closed; `pull_capture`/`push_playback` are not called."""
        self._native = port

    def native_fault(self, direction: int) -> None:
        """The media clock's thread, no lock held: the C port found a stream failed and
        stopped moving it. Said and reopened as when the Python path finds it."""
        pair = self._capture if direction == CAPTURE else self._playback
        if pair is None:
            return
        stream = pair[0]
        stream.broken = True
        self._stream_failed(f"{stream.what} stopped: {stream.context.error()}")

    # The media clock's thread -----------------------------------------------------------
    def pull_capture(self) -> None:
        pair = self._capture
        if pair is not None:
            try:
                pair[0].pull_into(pair[1])
            except PulseError as exc:
                self._stream_failed(str(exc), reopen=not isinstance(exc, PulseFaultError))

    def push_playback(self) -> None:
        pair = self._playback
        if pair is not None:
            try:
                pair[0].push_from(pair[1], self._scratch_addr, self._scratch_size, self.frame_bytes)
            except PulseError as exc:
                self._stream_failed(str(exc), reopen=not isinstance(exc, PulseFaultError))

    def counters(self) -> dict[str, Any]:
        """The server's own underruns/overruns of the open streams."""
        cap, play = self._capture, self._playback
        return {
            "capture_overflows": cap[0].overflows if cap else 0,
            "playback_underflows": play[0].underflows if play else 0,
        }

    # The Qt audio thread (QtBackend's requests and hot-plug) ----------------------------
    def _server(self) -> PulseContext:
        """The server connection, made again if the server went away (a restart): every
        stream on the old one is dead, so those are closed first, keeping their rings for
        `_reopen_broken`, which is posted to bring them back."""
        if self._context is not None and self._context.ready:
            return self._context
        old, self._context = self._context, None
        if old is not None:
            had_mic = self._drop_stream("_capture")
            reopen = self._drop_stream("_playback") or had_mic
            self._capturing = False  # until _reopen_broken opens the microphone again
            old.close()
            if reopen:
                self._schedule_reopen()
        try:
            self._context = PulseContext()
        except PulseError as exc:
            raise AudioError(f"cannot reach the sound server: {exc}") from exc
        return self._context

    def _drop_stream(self, attr: str) -> bool:
        pair = getattr(self, attr)
        setattr(self, attr, None)
        if pair is not None:
            if self._native is not None:  # before close: no tick may touch it after
                self._native.detach(CAPTURE if attr == "_capture" else PLAYBACK)
            pair[0].close()
        return pair is not None

    def _open_stream(self, record: bool, ring: Ring) -> None:
        kind = "capture" if record else "playback"
        attr = "_capture" if record else "_playback"
        self._drop_stream(attr)
        dev = self._chosen(kind)
        label = self._device(kind).description() or dev  # what Settings shows the agent
        ms = self.CAPTURE_MS if record else self.PLAYBACK_MS
        name = "Call microphone" if record else "Call audio"
        try:
            server = self._server()
        except AudioError as exc:
            what = "microphone" if record else "speaker"
            raise AudioError(f"cannot open the {what} “{label}”: {exc}") from exc
        try:
            stream = PulseStream(
                server,
                record,
                self.clock_rate,
                dev,
                ms,
                name=name,
                prebuf_ms=self.PREBUF_MS,
                label=label,
            )
        except PulseError as exc:
            raise AudioError(str(exc)) from exc
        setattr(self, attr, (stream, ring))
        if self._native is not None:
            self._native.attach(
                CAPTURE if record else PLAYBACK,
                stream.mainloop,
                stream.handle,
                over=0 if record else self.frame_bytes,
                stalled_ticks=STALLED_TICKS,
            )
        log.info("%s: %s (PulseAudio)", kind, dev or "the default")

    def _open_capture(self, ring: Ring) -> None:
        self._mic_ring = ring  # kept if the open fails: a device choice or hot-plug retries
        self._capturing = False
        self._open_stream(True, ring)
        self._capturing = True

    def _close_capture(self) -> None:
        if self._drop_stream("_capture"):
            log.info("capture closed")
        self._mic_ring = None
        self._capturing = False

    def _open_playback(self, ring: Ring) -> None:
        self._spk_ring = ring  # as for capture
        self._open_stream(False, ring)

    def _close_playback(self) -> None:
        self._drop_stream("_playback")
        self._spk_ring = None

    def _close_all(self) -> None:
        super()._close_all()
        if self._context is not None:
            self._context.close()
            self._context = None

    def _pump_playback(self) -> None:
        """Nothing to pump: the media clock pushes on its tick."""

    def _chosen(self, kind: str) -> str | None:
        """The PulseAudio name of the chosen device when it is present; None (the server's
        default, which follows the desktop's choice) when none was chosen or it is gone."""
        dev = self._device(kind, fallback=False)
        return None if dev.isNull() else device_id(dev)

    def _stream_failed(self, message: str, reopen: bool = True) -> None:
        """A stream failed (the sound server restarted; the media clock found it): tell the
        agent and open it again on the Qt thread; the call stays up. If that fails too, the
        agent is told that as well; the next device choice or hot-plug event tries again.
        A fault of our own (`reopen` False) is said and not retried on every tick."""
        log.warning("%s", message)
        if self._capture is not None and self._capture[0].broken:
            self._capturing = False  # not pretending the microphone is live
        self._tell_error(f"{message}; reconnecting…" if reopen else message)
        if reopen:
            self._schedule_reopen()

    def _schedule_reopen(self) -> None:
        """Post one `_reopen_broken` (both streams break together when the server goes)."""
        if not self._reopen_due:
            self._reopen_due = True
            self._post(self._reopen_broken)

    def _reopen_broken(self) -> None:
        self._reopen_due = False
        cap, play = self._capture, self._playback
        if self._mic_ring is not None and (cap is None or cap[0].broken):
            self._try_open(self._mic_ring, self._open_capture)
        if self._spk_ring is not None and (play is None or play[0].broken):
            self._try_open(self._spk_ring, self._open_playback)
