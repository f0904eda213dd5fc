"""The headset's conference port in C (port.c): Python opens it, attaches streams, closes it.

The bridge's media clock calls the C port directly, so nothing here runs per frame. What
Python keeps: opening the port (on the engine thread, like every pjsua call), attaching
and detaching PulseAudio streams (the Qt audio thread), and hearing of a stream that failed
(`on_fault`, called on the media clock's thread, rarely).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

from softphone.native import library, unavailable
from softphone.native.ring import NativeRing

log = logging.getLogger(__name__)

#: sb_fault_cb: (direction 0 capture / 1 playback).
FAULT_CB = ctypes.CFUNCTYPE(None, ctypes.c_int32)
CAPTURE, PLAYBACK = 0, 1

_declared = False


class NativeError(Exception):
    """The native port could not be opened; the message says why, in words."""


def _declare(lib: ctypes.CDLL) -> None:
    global _declared
    if _declared:
        return
    vp, i32 = ctypes.c_void_p, ctypes.c_int32
    lib.sb_port_open.argtypes = [ctypes.c_char_p, vp, vp, i32, i32, FAULT_CB, ctypes.c_char_p, i32]
    lib.sb_port_open.restype = vp
    lib.sb_port_slot.argtypes = [vp]
    lib.sb_port_slot.restype = i32
    lib.sb_port_close.argtypes = [vp]
    lib.sb_port_close.restype = None
    lib.sb_port_attach.argtypes = [vp, i32, vp, vp, i32, i32]
    lib.sb_port_attach.restype = i32
    _declared = True


class NativePort:
    """A pjmedia port in the conference bridge whose frames go to and from two NativeRings.

    Args:
        pjsua_path: the file of the loaded pjsua2 extension (`pjsua2._pjsua2.__file__`).
        mic / speaker: the rings the port reads from and writes to; kept alive here.
        on_fault: told the direction when an attached stream fails; the port stops
            moving that stream until it is attached again.

    Raises:
        NativeError: the library is missing, or pjmedia is not the version it was built for.
    """

    def __init__(
        self,
        pjsua_path: str,
        mic: NativeRing,
        speaker: NativeRing,
        clock_rate: int,
        frame_ms: int,
        on_fault: Callable[[int], None],
    ) -> None:
        lib = library()
        if lib is None:
            raise NativeError(unavailable() or "the native library is not available")
        _declare(lib)
        self._lib = lib
        self.mic, self.speaker = mic, speaker
        self._on_fault = on_fault
        self._fault_cb = FAULT_CB(self._fault)  # kept alive as long as the port
        err = ctypes.create_string_buffer(256)
        handle = lib.sb_port_open(
            pjsua_path.encode(),
            mic.handle,
            speaker.handle,
            clock_rate,
            frame_ms,
            self._fault_cb,
            err,
            len(err),
        )
        if not handle:
            raise NativeError(err.value.decode(errors="replace"))
        self._handle: int | None = handle
        self.slot: int = lib.sb_port_slot(handle)

    def _fault(self, direction: int) -> None:
        # The media clock's thread, no lock held. An exception cannot cross into C: log it.
        try:
            self._on_fault(direction)
        except Exception:
            log.exception(
                "handling a failed %s stream", "capture" if direction == 0 else "playback"
            )

    def attach(
        self, direction: int, mainloop: int, stream: int, over: int = 0, stalled_ticks: int = 1
    ) -> None:
        """Move this PulseAudio stream on every tick from now on (see PulseStream.push_from
        for `over` and `stalled_ticks`). Never with the mainloop's lock held."""
        assert self._handle is not None, "the port is closed"
        if self._lib.sb_port_attach(self._handle, direction, mainloop, stream, over, stalled_ticks):
            raise NativeError("the native port cannot move PulseAudio streams (no libpulse)")

    def detach(self, direction: int) -> None:
        """Stop moving that direction's stream; when this returns, no tick touches it."""
        if self._handle is not None:
            self._lib.sb_port_attach(self._handle, direction, None, None, 0, 0)

    def close(self) -> None:
        """Leave the bridge (engine thread). The C side is freed when the bridge lets go."""
        handle, self._handle = self._handle, None
        if handle is not None:
            self._lib.sb_port_close(handle)
