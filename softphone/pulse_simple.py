"""PulseAudio's simple API (libpulse-simple) through ctypes: one blocking stream per direction.

Why not QtMultimedia's streams on Linux: Qt's PulseAudio backend needs a pump (a 5 ms timer
on a Qt thread) because its sink is push-only, and its own PulseAudio thread alone costs
about what pjsua2's whole call does (docs/architecture.md, "Phone audio"). A blocking
`pa_simple_read`/`pa_simple_write` on a plain thread is paced by the device's own clock:
ctypes releases the GIL while it waits, so a call costs two wake-ups per 10 ms block and no
timer. PipeWire desktops serve the same API through pipewire-pulse.

Device names are PulseAudio's (`headset_ear`, `alsa_output.usb-...`): the ids QMediaDevices
reports on Linux, so device listing and hot-plug stay with Qt.

A stream is used by one thread at a time (libpulse-simple is not meant for concurrent use of
one stream); closing it while another thread reads is the caller's to avoid.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

PA_STREAM_PLAYBACK = 1
PA_STREAM_RECORD = 2
PA_SAMPLE_S16LE = 3
_DEFAULT = 0xFFFFFFFF  # (uint32_t) -1: "let the server choose"


class PulseError(RuntimeError):
    """The sound server refused or dropped a stream; the message is PulseAudio's, in words."""


class _SampleSpec(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8)]


class _BufferAttr(ctypes.Structure):
    _fields_ = [
        ("maxlength", ctypes.c_uint32),
        ("tlength", ctypes.c_uint32),
        ("prebuf", ctypes.c_uint32),
        ("minreq", ctypes.c_uint32),
        ("fragsize", ctypes.c_uint32),
    ]


_libs: tuple[Any, Any] | None = None
_libs_lock = threading.Lock()


def _load() -> tuple[Any, Any]:
    """(libpulse-simple, libpulse), loaded once.

    Raises:
        PulseError: the libraries are not installed (no PulseAudio or PipeWire client).
    """
    global _libs
    with _libs_lock:
        if _libs is not None:
            return _libs
        try:
            simple = ctypes.CDLL(ctypes.util.find_library("pulse-simple") or "libpulse-simple.so.0")
            pulse = ctypes.CDLL(ctypes.util.find_library("pulse") or "libpulse.so.0")
        except OSError as exc:
            raise PulseError(f"the PulseAudio client library is not installed ({exc})") from exc
        simple.pa_simple_new.restype = ctypes.c_void_p
        simple.pa_simple_new.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.POINTER(_SampleSpec),
            ctypes.c_void_p,
            ctypes.POINTER(_BufferAttr),
            ctypes.POINTER(ctypes.c_int),
        ]
        for name in ("pa_simple_read", "pa_simple_write"):
            fn = getattr(simple, name)
            fn.restype = ctypes.c_int
            fn.argtypes = [
                ctypes.c_void_p,
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.POINTER(ctypes.c_int),
            ]
        simple.pa_simple_free.restype = None
        simple.pa_simple_free.argtypes = [ctypes.c_void_p]
        pulse.pa_strerror.restype = ctypes.c_char_p
        pulse.pa_strerror.argtypes = [ctypes.c_int]
        _libs = (simple, pulse)
        return _libs


def available() -> bool:
    """True when libpulse-simple can be loaded (says nothing about a running server)."""
    try:
        _load()
    except PulseError:
        return False
    return True


def _strerror(code: int) -> str:
    text = _load()[1].pa_strerror(code)
    return text.decode("utf-8", "replace") if text else f"PulseAudio error {code}"


class PulseStream:
    """One PulseAudio stream of 16-bit mono PCM.

    Args:
        record: True for a microphone (record) stream, False for playback.
        rate: samples per second (the bridge's clock rate).
        device: PulseAudio's source/sink name; None follows the server's default.
        latency_ms: for playback the server-side buffer it keeps filled (`tlength`), for
            capture the size of the pieces it delivers (`fragsize`). Every ms is heard.
        app: the application name PulseAudio shows (pavucontrol, GNOME's sound settings).
        name: the stream's name there ("Call audio").

    Raises:
        PulseError: no server, no such device, or the format is refused.
    """

    def __init__(
        self,
        record: bool,
        rate: int,
        device: str | None,
        latency_ms: int,
        app: str = "Switchboard",
        name: str = "Call",
    ) -> None:
        simple, _ = _load()
        self._simple = simple
        self.record = record
        self.device = device
        spec = _SampleSpec(PA_SAMPLE_S16LE, rate, 1)
        size = rate * 2 * latency_ms // 1000
        attr = _BufferAttr(_DEFAULT, _DEFAULT, _DEFAULT, _DEFAULT, _DEFAULT)
        if record:
            attr.fragsize = size
        else:
            attr.tlength = size
            attr.minreq = size // 2  # ask for more while half of it is still queued
            attr.prebuf = _DEFAULT  # start once tlength is queued; resume so after an underrun
        err = ctypes.c_int(0)
        handle = simple.pa_simple_new(
            None,
            app.encode(),
            PA_STREAM_RECORD if record else PA_STREAM_PLAYBACK,
            device.encode() if device else None,
            name.encode(),
            ctypes.byref(spec),
            None,
            ctypes.byref(attr),
            ctypes.byref(err),
        )
        if not handle:
            what = "microphone" if record else "speaker"
            raise PulseError(
                f"cannot open the {what} {device or '(default)'}: {_strerror(err.value)}"
            )
        self._handle: int | None = handle

    def read_into(self, address: int, n: int) -> None:
        """Block until `n` bytes of microphone audio are at `address`.

        Raises:
            PulseError: the stream failed (its device was removed with nowhere to move to,
                the server went away) or is closed.
        """
        err = ctypes.c_int(0)
        if (
            self._handle is None
            or self._simple.pa_simple_read(self._handle, address, n, ctypes.byref(err)) < 0
        ):
            raise PulseError(self._failure(err.value))

    def write_from(self, address: int, n: int) -> None:
        """Queue `n` bytes at `address` for the speaker; blocks while the server's buffer is
        full, which is what paces the playback thread to the device's clock.

        Raises:
            PulseError: as for `read_into`.
        """
        err = ctypes.c_int(0)
        if (
            self._handle is None
            or self._simple.pa_simple_write(self._handle, address, n, ctypes.byref(err)) < 0
        ):
            raise PulseError(self._failure(err.value))

    def close(self) -> None:
        """Release the stream (idempotent); never while another thread is inside a read."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._simple.pa_simple_free(handle)

    def _failure(self, code: int) -> str:
        if self._handle is None:
            return "the stream is closed"
        what = "microphone" if self.record else "speaker"
        return f"the {what} {self.device or '(default)'} stopped: {_strerror(code)}"
