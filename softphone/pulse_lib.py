"""libpulse's C API as ctypes sees it: the types, constants and signatures the call's streams
use (softphone.pulse_client), loaded once. Nothing here runs PulseAudio; see pulse_client.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

PA_SAMPLE_S16LE = 3
DEFAULT = 0xFFFFFFFF  # (uint32_t) -1: "let the server choose"
SIZE_ERROR = ctypes.c_size_t(-1).value
CONTEXT_READY, CONTEXT_FAILED, CONTEXT_TERMINATED = 4, 5, 6
STREAM_READY, STREAM_FAILED, STREAM_TERMINATED = 2, 3, 4
#: ADJUST_LATENCY: the server sizes the device's buffer from ours. Playback also asks for
#: timing updates (libpulse backs them off to one every 1.5 s) and interpolates between
#: them, so the clock can read how much is queued at the server (`pa_stream_get_latency`).
ADJUST_LATENCY = 0x2000
INTERPOLATE_TIMING = 0x0002
AUTO_TIMING_UPDATE = 0x0008
SEEK_RELATIVE = 0
NOTIFY = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class PulseError(RuntimeError):
    """The sound server refused or dropped a stream; the message is PulseAudio's, in words."""


class SampleSpec(ctypes.Structure):
    _fields_ = [("format", ctypes.c_int), ("rate", ctypes.c_uint32), ("channels", ctypes.c_uint8)]


class TimingInfo(ctypes.Structure):
    """The head of pa_timing_info (pulse/def.h), up to the one field read: it is only ever
    viewed in place, inside libpulse's stream (`pa_stream_get_timing_info`), never copied."""

    _fields_ = [
        ("timestamp_sec", ctypes.c_long),  # struct timeval
        ("timestamp_usec", ctypes.c_long),
        ("synchronized_clocks", ctypes.c_int),
        ("sink_usec", ctypes.c_uint64),  # the device's own latency
    ]


class BufferAttr(ctypes.Structure):
    _fields_ = [
        ("maxlength", ctypes.c_uint32),
        ("tlength", ctypes.c_uint32),
        ("prebuf", ctypes.c_uint32),
        ("minreq", ctypes.c_uint32),
        ("fragsize", ctypes.c_uint32),
    ]


P = ctypes.c_void_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "pa_threaded_mainloop_new": (P, []),
    "pa_threaded_mainloop_start": (ctypes.c_int, [P]),
    "pa_threaded_mainloop_stop": (None, [P]),
    "pa_threaded_mainloop_free": (None, [P]),
    "pa_threaded_mainloop_lock": (None, [P]),
    "pa_threaded_mainloop_unlock": (None, [P]),
    "pa_threaded_mainloop_get_api": (P, [P]),
    "pa_context_new": (P, [P, ctypes.c_char_p]),
    "pa_context_set_state_callback": (None, [P, NOTIFY, P]),
    "pa_context_connect": (ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_int, P]),
    "pa_context_get_state": (ctypes.c_int, [P]),
    "pa_context_errno": (ctypes.c_int, [P]),
    "pa_context_disconnect": (None, [P]),
    "pa_context_unref": (None, [P]),
    "pa_stream_new": (P, [P, ctypes.c_char_p, ctypes.POINTER(SampleSpec), P]),
    "pa_stream_set_state_callback": (None, [P, NOTIFY, P]),
    "pa_stream_set_underflow_callback": (None, [P, NOTIFY, P]),
    "pa_stream_set_overflow_callback": (None, [P, NOTIFY, P]),
    "pa_stream_connect_playback": (
        ctypes.c_int,
        [P, ctypes.c_char_p, ctypes.POINTER(BufferAttr), ctypes.c_int, P, P],
    ),
    "pa_stream_connect_record": (
        ctypes.c_int,
        [P, ctypes.c_char_p, ctypes.POINTER(BufferAttr), ctypes.c_int],
    ),
    "pa_stream_get_state": (ctypes.c_int, [P]),
    "pa_stream_writable_size": (ctypes.c_size_t, [P]),
    "pa_stream_peek": (ctypes.c_int, [P, ctypes.POINTER(P), ctypes.POINTER(ctypes.c_size_t)]),
    "pa_stream_drop": (ctypes.c_int, [P]),
    "pa_stream_write": (
        ctypes.c_int,
        [P, P, ctypes.c_size_t, P, ctypes.c_int64, ctypes.c_int],
    ),
    "pa_stream_disconnect": (ctypes.c_int, [P]),
    "pa_stream_unref": (None, [P]),
    "pa_stream_get_latency": (
        ctypes.c_int,
        [P, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_int)],
    ),
    "pa_stream_get_timing_info": (ctypes.POINTER(TimingInfo), [P]),
    "pa_strerror": (ctypes.c_char_p, [ctypes.c_int]),
}

_lib: Any = None
_lib_lock = threading.Lock()


def load() -> Any:
    """libpulse, loaded once, with every function used here typed.

    Raises:
        PulseError: the library is not installed (no PulseAudio or PipeWire client).
    """
    global _lib
    with _lib_lock:
        if _lib is None:
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("pulse") or "libpulse.so.0")
            except OSError as exc:
                raise PulseError(f"the PulseAudio client library is not installed ({exc})") from exc
            for name, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype, fn.argtypes = restype, argtypes
            _lib = lib
        return _lib


def available() -> bool:
    """True when libpulse can be loaded (says nothing about a running server)."""
    try:
        load()
    except PulseError:
        return False
    return True


def strerror(code: int) -> str:
    text = load().pa_strerror(code)
    return text.decode("utf-8", "replace") if text else f"PulseAudio error {code}"
