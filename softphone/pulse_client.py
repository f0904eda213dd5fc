"""PulseAudio's asynchronous API (libpulse) through ctypes, moved by the caller's clock.

Why not QtMultimedia's streams on Linux: Qt's PulseAudio sink is push-only and needs a pump
(a 5 ms timer on a Qt thread), and its own PulseAudio thread alone costs about what pjsua2's
whole call does (docs/architecture.md, "Phone audio"). Why not libpulse-simple (the first
version of this backend): each simple stream runs its own mainloop thread and needs a
thread of ours blocked in it, so a call had four threads waking every 10 ms.

Here one `PulseContext` owns one libpulse mainloop thread, which does all the socket work
in C and never calls Python per block. The streams have no thread of ours: the conference
bridge's media clock, which ticks every 20 ms anyway, takes what the microphone delivered
(`pull_into`) and hands the speaker what the calls said (`push_from`), both non-blocking
under the mainloop's lock. PipeWire desktops serve the same API through pipewire-pulse.

Device names are PulseAudio's (`headset_ear`, `alsa_output.usb-...`): the ids QMediaDevices
reports on Linux, so device listing and hot-plug stay with Qt.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from softphone.backend import Ring
from softphone.pulse_lib import (
    ADJUST_LATENCY,
    AUTO_TIMING_UPDATE,
    CONTEXT_FAILED,
    CONTEXT_READY,
    CONTEXT_TERMINATED,
    DEFAULT,
    INTERPOLATE_TIMING,
    NOTIFY,
    PA_SAMPLE_S16LE,
    SEEK_RELATIVE,
    SIZE_ERROR,
    STREAM_FAILED,
    STREAM_READY,
    STREAM_TERMINATED,
    BufferAttr,
    P,
    PulseError,
    SampleSpec,
    TimingInfo,
    available,
    load,
    strerror,
)

__all__ = ["PulseContext", "PulseError", "PulseFaultError", "PulseStream", "available"]


#: Capture: how much one pull gathers before it writes to the ring (more goes in two writes).
GATHER_MS = 60


class PulseFaultError(PulseError):
    """Our own code failed on the clock's path (a bug, not the server): opening the stream
    again would fail the same way on the next tick, so it is said and left closed."""


#: Pushes in a row without room before playback counts as stalled: 100 ms, over twice the
#: 40 ms `tlength` the backend asks for. Two (40 ms) also fired mid-call, when one frame let
#: over the room had filled the server for two ticks, and cut 4.5 ms of speech.
STALLED_TICKS = 5

log = logging.getLogger(__name__)


class PulseContext:
    """One connection to the sound server and the libpulse thread that serves it.

    Args:
        app: the application name PulseAudio shows (pavucontrol, GNOME's sound settings).
        timeout: seconds to wait for the server to answer.

    Raises:
        PulseError: no server (the words are PulseAudio's: "Connection refused").
    """

    def __init__(self, app: str = "Switchboard", timeout: float = 5.0) -> None:
        lib = self._lib = load()
        self._closed = False
        self._ctx: int | None = None
        self._ml = lib.pa_threaded_mainloop_new()
        if not self._ml:
            raise PulseError("PulseAudio's client could not start (out of memory?)")
        self._changed = threading.Event()
        self._on_state = NOTIFY(lambda _c, _u: self._changed.set())  # kept alive here
        self._ctx = lib.pa_context_new(lib.pa_threaded_mainloop_get_api(self._ml), app.encode())
        lib.pa_context_set_state_callback(self._ctx, self._on_state, None)
        if lib.pa_context_connect(self._ctx, None, 0, None) < 0 or (
            lib.pa_threaded_mainloop_start(self._ml) < 0
        ):
            message = strerror(lib.pa_context_errno(self._ctx))
            self.close()
            raise PulseError(message)
        state = self.wait_for(
            lambda: lib.pa_context_get_state(self._ctx),
            CONTEXT_READY,
            (CONTEXT_FAILED, CONTEXT_TERMINATED),
            timeout,
        )
        if state != CONTEXT_READY:
            message = (
                strerror(lib.pa_context_errno(self._ctx))
                if state in (CONTEXT_FAILED, CONTEXT_TERMINATED)
                else f"the sound server did not answer within {timeout:g} s"
            )
            self.close()
            raise PulseError(message)

    @property
    def ready(self) -> bool:
        """False once the server went away (restart, crash): every stream on it is dead."""
        if self._closed:
            return False
        with self.locked():
            return bool(self._lib.pa_context_get_state(self._ctx) == CONTEXT_READY)

    def locked(self) -> _Lock:
        """The mainloop's (recursive) lock: every call on a stream or the context holds it."""
        return _Lock(self._lib, self._ml)

    def wait_for(
        self, state: Callable[[], int], ready: int, final: tuple[int, ...], timeout: float
    ) -> int:
        """Wait, with a deadline, until `state()` (read under the lock) is `ready` or one of
        the `final` (failed) states; returns the last state read."""
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()  # before reading: a change after the read wakes the wait
            with self.locked():
                now = state()
            left = deadline - time.monotonic()
            if now == ready or now in final or left <= 0:
                return now
            self._changed.wait(left)

    def error(self) -> str:
        """The context's last error in PulseAudio's words."""
        with self.locked():
            return strerror(self._lib.pa_context_errno(self._ctx))

    def close(self) -> None:
        """Disconnect and stop the libpulse thread (idempotent); close the streams first.

        The memory is freed with the object, not here: a media clock tick that read a
        stream just before the Qt thread closed it may still take this mainloop's lock, and
        the stream keeps its context alive until then.
        """
        if self._closed:
            return
        self._closed = True
        if self._ctx:
            with self.locked():
                self._lib.pa_context_disconnect(self._ctx)
        self._lib.pa_threaded_mainloop_stop(self._ml)  # never under the lock; safe if unstarted

    def __del__(self) -> None:
        ml = getattr(self, "_ml", None)
        if not ml:
            return
        self.close()
        if self._ctx:
            self._lib.pa_context_unref(self._ctx)
        self._lib.pa_threaded_mainloop_free(ml)
        self._ml = self._ctx = None

    @property
    def mainloop(self) -> int:
        """The pa_threaded_mainloop pointer (PulseStream locks it on the clock's path)."""
        assert self._ml, "the context is closed"
        return int(self._ml)

    @property
    def handle(self) -> int:
        """The pa_context pointer (for PulseStream)."""
        assert self._ctx is not None, "the context is closed"
        return int(self._ctx)


class _Lock:
    __slots__ = ("_lib", "_ml")

    def __init__(self, lib: Any, ml: int) -> None:
        self._lib, self._ml = lib, ml

    def __enter__(self) -> None:
        self._lib.pa_threaded_mainloop_lock(self._ml)

    def __exit__(self, *_exc: object) -> None:
        self._lib.pa_threaded_mainloop_unlock(self._ml)


class PulseStream:
    """One stream of 16-bit mono PCM, moved by the caller (non-blocking).

    Args:
        context: the server connection it lives on.
        record: True for a microphone (record) stream, False for playback.
        rate: samples per second (the bridge's clock rate).
        device: PulseAudio's source/sink name; None follows the server's default.
        latency_ms: for playback the server-side buffer it keeps filled (`tlength`), for
            capture the size of the pieces it delivers (`fragsize`). Every ms is heard.
        name: the stream's name in the desktop's sound settings ("Call audio").
        timeout: seconds to wait for the server to set the stream up.
        prebuf_ms: playback: how much must be queued before the device starts (and starts
            again after running dry); None: the server's default, `tlength`.
        label: the device's name as the agent knows it (Settings shows it), for the words
            of errors; `device` when not given.

    Raises:
        PulseError: no such device, the format is refused, or the server went away.
    """

    def __init__(
        self,
        context: PulseContext,
        record: bool,
        rate: int,
        device: str | None,
        latency_ms: int,
        name: str = "Call",
        timeout: float = 5.0,
        prebuf_ms: int | None = None,
        label: str | None = None,
    ) -> None:
        lib = self._lib = load()
        self.context = context
        self.record = record
        self.device = device
        kind, label = ("microphone" if record else "speaker"), label or device
        #: The stream in the agent's words: "the microphone “Jabra Evolve2 65”".
        self.what = f"the {kind} “{label}”" if label else f"the default {kind}"
        self.broken = False  # the stream failed under us (said once by pull_into/push_from)
        self.underflows = 0  # playback: times the device found the server's buffer empty
        self.overflows = 0  # capture: times the server dropped audio we had not taken
        spec = SampleSpec(PA_SAMPLE_S16LE, rate, 1)
        size = rate * 2 * latency_ms // 1000
        self._ml = context.mainloop  # the clock's path locks it directly (no wrapper object)
        attr = BufferAttr(DEFAULT, DEFAULT, DEFAULT, DEFAULT, DEFAULT)
        if record:
            attr.fragsize = size
        else:
            attr.tlength = size
            attr.minreq = size // 2  # ask for more while half of it is still queued
            if prebuf_ms is not None:
                attr.prebuf = rate * 2 * prebuf_ms // 1000
        self._check_state = True  # the clock reads the stream's state on its first tick
        self._callbacks = (
            NOTIFY(lambda _s, _u: self._state_changed(context)),
            NOTIFY(lambda _s, _u: self._count("underflows")),
            NOTIFY(lambda _s, _u: self._count("overflows")),
        )
        dev = device.encode() if device else None
        with context.locked():
            stream = lib.pa_stream_new(context.handle, name.encode(), ctypes.byref(spec), None)
            if not stream:
                raise PulseError(self._words(strerror(lib.pa_context_errno(context.handle))))
            self._stream: int | None = stream
            lib.pa_stream_set_state_callback(stream, self._callbacks[0], None)
            lib.pa_stream_set_underflow_callback(stream, self._callbacks[1], None)
            lib.pa_stream_set_overflow_callback(stream, self._callbacks[2], None)
            if record:
                rc = lib.pa_stream_connect_record(stream, dev, ctypes.byref(attr), ADJUST_LATENCY)
            else:
                flags = ADJUST_LATENCY | INTERPOLATE_TIMING | AUTO_TIMING_UPDATE
                rc = lib.pa_stream_connect_playback(
                    stream, dev, ctypes.byref(attr), flags, None, None
                )
        state = (
            context.wait_for(
                lambda: lib.pa_stream_get_state(stream),
                STREAM_READY,
                (STREAM_FAILED, STREAM_TERMINATED),
                timeout,
            )
            if rc >= 0
            else STREAM_FAILED
        )
        if state != STREAM_READY:
            reason = (
                context.error()
                if state in (STREAM_FAILED, STREAM_TERMINATED)
                else f"the sound server did not answer within {timeout:g} s"
            )
            self.close()
            raise PulseError(self._words(reason))
        self._full_ticks = 0  # playback: pushes in a row that found no room at the server
        self._peek_ptr = P()
        self._peek_len = ctypes.c_size_t()
        self._peek_refs = (ctypes.byref(self._peek_ptr), ctypes.byref(self._peek_len))
        self._bytes_per_s = rate * 2
        self._latency = ctypes.c_uint64()
        self._negative = ctypes.c_int()
        self._latency_refs = (ctypes.byref(self._latency), ctypes.byref(self._negative))
        self._timing: TimingInfo | None = None
        if record:  # where one pull gathers the pieces (`_pull`)
            self._gather_size = rate * 2 * GATHER_MS // 1000
            self._gather = (ctypes.c_char * self._gather_size)()
            self._gather_addr = ctypes.addressof(self._gather)

    @property
    def handle(self) -> int:
        """The pa_stream pointer (for the native port), 0 once closed."""
        return int(self._stream or 0)

    @property
    def mainloop(self) -> int:
        """The pa_threaded_mainloop pointer the stream lives on."""
        return int(self._ml)

    def _words(self, reason: str) -> str:
        return f"cannot open {self.what}: {reason}"

    def _state_changed(self, context: PulseContext) -> None:
        # libpulse's thread, mainloop lock held: the clock's next tick reads the new state.
        self._check_state = True
        context._changed.set()

    def _count(self, what: str) -> None:
        setattr(self, what, getattr(self, what) + 1)
        log.debug("%s %s on %s", "capture" if self.record else "playback", what, self.device)

    # The media clock's thread ------------------------------------------------------------
    def pull_into(self, ring: Ring) -> None:
        """Move everything the microphone delivered so far into `ring`; never waits.

        Raises:
            PulseError: the first time the stream is found failed (later calls do nothing).
        """
        self._on_clock(self._pull, ring)

    def push_from(self, ring: Ring, scratch: int, size: int, over: int = 0) -> None:
        """Move as much of `ring` as the server's buffer has room for, plus `over` bytes
        (through `scratch`, a native buffer of `size` bytes); what does not fit stays in the
        ring, where a standing queue is trimmed. Never waits.

        `over`: the server tells its room in `minreq` steps, so a frame that arrives just
        before it asks for more would wait a tick in the ring (and be trimmed as standing);
        up to `over` bytes beyond the room are let through instead, but only while the
        server is taking audio (it had room at the last push): a device that has not started
        yet (a null sink takes up to 2 s) would otherwise queue a second of audio. When it
        has had no room for `STALLED_TICKS` pushes in a row (a running device asks for more
        within `tlength`), the ring keeps only its freshest frame: the backlog has not been
        heard, and splicing it out later costs audio and the clock's time.

        Raises:
            PulseError: as for `pull_into`.
        """
        self._on_clock(self._push, ring, scratch, size, over)

    def _on_clock(self, step: Callable[..., None], *args: Any) -> None:
        # Direct lock calls, no context-manager object: this runs twice per 20 ms tick.
        lib, stream = self._lib, self._stream
        if stream is None or self.broken:
            return
        lib.pa_threaded_mainloop_lock(self._ml)
        try:
            if self._stream is None:  # closed on the Qt thread meanwhile
                return
            if self._check_state:  # set by the state callback: no state call per tick
                self._check_state = False
                if lib.pa_stream_get_state(stream) != STREAM_READY:
                    self._break()
            try:
                step(lib, stream, *args)
            except PulseError:
                raise
            except Exception as exc:
                # A bug here would print a traceback on every tick (pjsua2 prints what a
                # port callback raises and goes on): stop this stream once, in words.
                log.exception("the %s stream failed", "capture" if self.record else "playback")
                self.broken = True
                raise PulseFaultError(f"{self.what} stopped: internal error ({exc})") from exc
        finally:
            lib.pa_threaded_mainloop_unlock(self._ml)

    def _pull(self, lib: Any, stream: int, ring: Ring) -> None:
        # The server hands over small pieces (5 ms on a null source, 4 per tick): they are
        # gathered and go into the ring in one write, one lock instead of four.
        ptr, length, ptr_ref, len_ref = self._peek_ptr, self._peek_len, *self._peek_refs
        peek, drop, memmove = lib.pa_stream_peek, lib.pa_stream_drop, ctypes.memmove
        base, room, got = self._gather_addr, self._gather_size, 0
        while True:
            if peek(stream, ptr_ref, len_ref) < 0:
                self._break()
            n = length.value
            if not n:
                break
            src = ptr.value  # None with a length: a hole in the record stream, skipped
            if src:
                if got + n > room:
                    ring.write_from(base, got)
                    got = 0
                if n > room:
                    ring.write_from(src, n)
                else:
                    memmove(base + got, src, n)
                    got += n
            drop(stream)
        if got:
            ring.write_from(base, got)

    def _push(self, lib: Any, stream: int, ring: Ring, scratch: int, size: int, over: int) -> None:
        room = lib.pa_stream_writable_size(stream)
        if room == SIZE_ERROR:
            self._break()
        most = room + over if self._full_ticks == 0 else room
        self._full_ticks = 0 if room else self._full_ticks + 1
        if self._full_ticks >= STALLED_TICKS:
            ring.keep_newest(ring.frame_bytes)
        n = ring.drain_into(scratch, min(most, size), self._queued(lib, stream))
        if n and lib.pa_stream_write(stream, scratch, n, None, 0, SEEK_RELATIVE) < 0:
            self._break()

    def _queued(self, lib: Any, stream: int) -> int | None:
        """Bytes the server holds for this stream and has not yet handed to the device (the
        latency it reports, interpolated since its last timing update, less the device's
        own part), or None before the first timing update.

        Why the ring needs it: pushes come every 20 ms, so a queue that settled at, say,
        20 ms before each push stays there (each push refills what the device took). The
        ring cuts that standing part out of a pause and the queue is left with the
        ring's target (5 ms) before each push, wherever the call's clocks fell.
        """
        if lib.pa_stream_get_latency(stream, *self._latency_refs) < 0 or self._negative.value:
            return None
        timing = self._timing
        if timing is None:  # libpulse keeps it inside the stream: one view is enough
            info = lib.pa_stream_get_timing_info(stream)
            if not info:
                return None
            timing = self._timing = info.contents
        n: int = max(0, self._latency.value - timing.sink_usec) * self._bytes_per_s // 1_000_000
        return n - n % 2

    def _break(self) -> None:
        # Lock held.
        self.broken = True
        reason = strerror(self._lib.pa_context_errno(self.context.handle))
        raise PulseError(f"{self.what} stopped: {reason}")

    def close(self) -> None:
        """Disconnect and release the stream (idempotent; any thread)."""
        with self.context.locked():
            stream, self._stream = self._stream, None
            if stream is not None:
                lib = self._lib
                lib.pa_stream_set_state_callback(stream, NOTIFY(), None)
                lib.pa_stream_set_underflow_callback(stream, NOTIFY(), None)
                lib.pa_stream_set_overflow_callback(stream, NOTIFY(), None)
                if lib.pa_stream_get_state(stream) == STREAM_READY:
                    lib.pa_stream_disconnect(stream)
                lib.pa_stream_unref(stream)
