"""`NativeRing`: softphone/ringbuffer.py's `RingBuffer`, kept in C (ring.c).

Why: the native port (port.c) moves every frame between the device and pjsua2 without
entering Python, so the ring it reads and writes must live in C too; `handle` is what it
takes. The Python side (the backends' device threads, the quality report) keeps using the
`RingBuffer` API through this class, and the same tests run against both
(tests/phone/test_ringbuffer.py), including a long random session compared byte for byte.

The prototypes are declared on the first `NativeRing()`, once the library loads (it may be
built after this module is imported); without it, `NativeRing()` raises with the reason.
"""

from __future__ import annotations

import ctypes
from typing import Any

from softphone import native

#: The trim kinds, in the order of sbaudio.h's SB_TRIM_* (RingBuffer.trims' names).
KINDS = ("start", "pause", "splice", "stall", "pad")
TRIMS_KEPT = 32  # SB_TRIMS_KEPT: RingBuffer.trims' maxlen

_CONFIG_FIELDS = (
    "frame_bytes",
    "frame_ms",
    "start_ms",
    "target_ms",
    "capacity_ms",
    "window_reads",
    "quiet_peak",
    "pause_ms",
    "defer_ms",
    "hold_ms",
)
_COUNTER_FIELDS = (
    "fill_bytes",
    "underruns",
    "dropped_bytes",
    "trimmed_bytes",
    "padded_bytes",
    "splices",
    "frames_in",
    "frames_out",
)


class _Config(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in _CONFIG_FIELDS]


class _Counters(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in _COUNTER_FIELDS]


class _Trim(ctypes.Structure):
    _fields_ = [
        ("t", ctypes.c_double),
        ("bytes", ctypes.c_int64),
        ("peak", ctypes.c_int32),
        ("kind", ctypes.c_int32),
        ("rms", ctypes.c_double),
    ]


class _Sizes(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in ("start_bytes", "target_bytes", "capacity")]


class _Counter:
    """A read-only attribute of NativeRing that reads its C counter of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, ring: NativeRing, owner: type | None = None) -> int:
        return int(getattr(ring._counters(), self.name))


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Give every sb_ring_* function its C types: without them ctypes passes Python ints as
    C ints and truncates the 64-bit pointer `sb_ring_new` returns."""
    ring, i64, vp = ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p
    protos: dict[str, tuple[Any, list[Any]]] = {
        "sb_ring_new": (ring, [ctypes.POINTER(_Config)]),
        "sb_ring_free": (None, [ring]),
        "sb_ring_reset": (None, [ring]),
        "sb_ring_write": (None, [ring, vp, i64]),
        "sb_ring_read": (ctypes.c_int, [ring, vp, i64]),
        "sb_ring_drain": (i64, [ring, vp, i64, i64]),
        "sb_ring_keep_newest": (None, [ring, i64]),
        "sb_ring_fill": (i64, [ring]),
        "sb_ring_counters_get": (None, [ring, ctypes.POINTER(_Counters)]),
        "sb_ring_trims": (ctypes.c_int, [ring, ctypes.POINTER(_Trim), ctypes.c_int]),
        "sb_ring_sizes_get": (None, [ring, ctypes.POINTER(_Sizes)]),
    }
    for name, (restype, argtypes) in protos.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


_declared: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL | None:
    """The library with its types declared, once it loads (it may be built after import)."""
    global _declared
    if _declared is None:
        lib = native.library()
        if lib is not None:
            _declared = _declare(lib)
    return _declared


class NativeRing:
    """`RingBuffer` (same arguments, same behaviour) with its state in a C `sb_ring`.

    Differences a caller can see, none on a path the engine takes: `quiet_peak` and the
    sizes are read-only (the C ring took them at construction); a negative duration is a
    ValueError here (RingBuffer takes it and cuts more than is queued later); a negative
    `downstream` counts as unknown, None (PulseAudio's count is clamped at 0), and a
    negative `keep_newest` as 0; `trims` is a list, not a deque; and `close()` frees the
    ring, after which every call is a no-op that reads as empty.
    """

    def __init__(
        self,
        frame_bytes: int,
        frame_ms: int = 20,
        start_ms: int = 40,
        target_ms: int = 40,
        capacity_ms: int = 400,
        window_reads: int = 50,
        quiet_peak: int = 328,
        pause_ms: int = 120,
        defer_ms: int = 4000,
        hold_ms: int = 100,
    ) -> None:
        #: The `sb_ring *` as an int, for the native port (0 once closed).
        self.handle: int = 0  # set first: close() runs even when construction fails
        lib = _library()
        if lib is None:
            raise RuntimeError(f"the native ring is unavailable: {native.unavailable()}")
        self._lib: Any = lib
        config = _Config(
            frame_bytes,
            frame_ms,
            start_ms,
            target_ms,
            capacity_ms,
            window_reads,
            quiet_peak,
            pause_ms,
            defer_ms,
            hold_ms,
        )
        handle = self._lib.sb_ring_new(ctypes.byref(config))
        if not handle:
            raise ValueError(
                f"no native ring for frame_bytes={frame_bytes} frame_ms={frame_ms} "
                f"start_ms={start_ms} target_ms={target_ms} capacity_ms={capacity_ms} "
                f"pause_ms={pause_ms} defer_ms={defer_ms} hold_ms={hold_ms}: a size that "
                "comes to nothing, a negative duration, or no memory"
            )
        self.handle = handle
        self.frame_bytes = frame_bytes
        self._quiet_peak = quiet_peak
        sizes = _Sizes()
        self._lib.sb_ring_sizes_get(handle, ctypes.byref(sizes))
        self._start_bytes: int = sizes.start_bytes
        self._target_bytes: int = sizes.target_bytes
        self._capacity: int = sizes.capacity

    def close(self) -> None:
        """Free the C ring now. Only once nothing can call it any more: the native port has
        let go of `handle` and neither end's thread still reads or writes (the C ring's
        lock lives in the memory this frees)."""
        handle, self.handle = self.handle, 0
        if handle:
            self._lib.sb_ring_free(handle)

    def __del__(self) -> None:
        self.close()

    # The sizes, as computed by ring.c ------------------------------------------------

    @property
    def start_bytes(self) -> int:
        """The priming threshold."""
        return self._start_bytes

    @property
    def target_bytes(self) -> int:
        """The standing-queue target."""
        return self._target_bytes

    @property
    def capacity(self) -> int:
        """The hard cap."""
        return self._capacity

    @property
    def quiet_peak(self) -> int:
        """The largest sample a stretch may hold to be cut as a pause."""
        return self._quiet_peak

    @property
    def fill(self) -> int:
        """Bytes queued now."""
        return int(self._lib.sb_ring_fill(self.handle))

    # RingBuffer's API --------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything queued (a new call, a device change)."""
        self._lib.sb_ring_reset(self.handle)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data` (copied)."""
        n = len(data)
        if n == 0:
            return
        # The same buffer RingBuffer.write builds, so odd inputs behave the same too.
        src = (
            (ctypes.c_char * n).from_buffer_copy(data)
            if not isinstance(data, bytearray)
            else (ctypes.c_char * n).from_buffer(data)
        )
        self._lib.sb_ring_write(self.handle, ctypes.addressof(src), n)

    def write_from(self, address: int, n: int) -> None:
        """Queue `n` bytes read from native memory at `address` (the zero-copy hot path)."""
        self._lib.sb_ring_write(self.handle, address, n)

    def read_into(self, address: int, n: int) -> bool:
        """Fill `n` bytes at native `address` with queued audio or silence.

        Returns:
            True when real audio was delivered, False when it was silence (priming/underrun).
        """
        return bool(self._lib.sb_ring_read(self.handle, address, n))

    def drain_into(self, address: int, most: int, downstream: int | None = None) -> int:
        """Move up to `most` bytes of queued audio to native `address` (RingBuffer's
        `drain_into`: `downstream` is what the consumer's own buffer holds, or None).

        Returns:
            bytes written at `address` (even; 0 when nothing is queued).
        """
        down = -1 if downstream is None else downstream
        return int(self._lib.sb_ring_drain(self.handle, address, most, down))

    def keep_newest(self, keep: int) -> None:
        """Drop all but the freshest `keep` bytes (a stalled consumer; a "stall" trim)."""
        self._lib.sb_ring_keep_newest(self.handle, keep)

    def read(self, n: int) -> bytes:
        """`read_into` for Python callers (tests, the WAV backend): always `n` bytes."""
        out = (ctypes.c_char * n)()
        self.read_into(ctypes.addressof(out), n)
        return out.raw

    # Counters ----------------------------------------------------------------------

    def _counters(self) -> _Counters:
        out = _Counters()
        self._lib.sb_ring_counters_get(self.handle, ctypes.byref(out))
        return out

    # RingBuffer's counters, read from C: reads that found less than a frame queued; bytes
    # lost to the hard cap; bytes cut (start, pause, splice, stall); silence added in pauses;
    # trims made without a pause; writes; reads and drains that moved audio.
    underruns = _Counter()
    dropped_bytes = _Counter()
    trimmed_bytes = _Counter()
    padded_bytes = _Counter()
    splices = _Counter()
    frames_in = _Counter()
    frames_out = _Counter()

    @property
    def trims(self) -> list[tuple[float, int, int, float, str]]:
        """The latest trims, oldest first, as RingBuffer.trims holds them: (monotonic time,
        bytes, peak, RMS of what was removed, kind)."""
        out = (_Trim * TRIMS_KEPT)()
        count = self._lib.sb_ring_trims(self.handle, out, TRIMS_KEPT)
        return [(t.t, t.bytes, t.peak, t.rms, KINDS[t.kind]) for t in out[:count]]

    def counters(self) -> dict[str, Any]:
        """A copy of the health counters, for the quality event (RingBuffer's shape).

        The counters and the trims are two snapshots: a trim made between them can show
        in the list but not yet in the byte counts.
        """
        c = self._counters()
        return {
            "fill_bytes": c.fill_bytes,
            "underruns": c.underruns,
            "dropped_bytes": c.dropped_bytes,
            "trimmed_bytes": c.trimmed_bytes,
            "padded_bytes": c.padded_bytes,
            "splices": c.splices,
            "trims": [[round(t, 4), b, p, round(r, 1), k] for t, b, p, r, k in self.trims],
        }
