"""Cheap access to the bytes of a pjsua2 `MediaFrame.buf` (a SWIG `std::vector<uint8_t>`).

`bytes(bytearray(frame.buf))` walks the vector one SWIG call per byte: about 200-300 us per
20 ms frame, i.e. 1-1.5 % of a core per direction just to copy. Every mainstream C++ runtime
(libstdc++, libc++, MSVC release) lays a vector out as three pointers: begin, end, end of
capacity. We read `begin`/`end` through the SWIG object's address and memmove: about 2 us.

Because that relies on a layout the C++ standard does not promise, `probe()` checks it on a
vector with known content at start-up, and the bridge falls back to the slow, portable copy
when the probe fails (logged once). bench/bench_phone_framecopy.py measures both.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

log = logging.getLogger(__name__)

_PTRS = ctypes.POINTER(ctypes.c_void_p)


def vector_span(vec: Any) -> tuple[int, int]:
    """(address of the first byte, length) of a SWIG ByteVector, by its in-memory layout."""
    p = ctypes.cast(int(vec.this), _PTRS)
    begin, end = p[0] or 0, p[1] or 0
    return begin, end - begin


def probe(byte_vector_type: Any) -> bool:
    """True when `vector_span` reads this runtime's vectors correctly (checked, not assumed)."""
    pattern = bytes((i * 37 + 11) & 0xFF for i in range(320))
    try:
        vec = byte_vector_type(pattern)
        addr, n = vector_span(vec)
        if n != len(pattern) or not addr:
            return False
        if ctypes.string_at(addr, n) != pattern:
            return False
        vec.resize(640)
        addr, n = vector_span(vec)
        ctypes.memmove(addr, pattern + pattern, 640)
        return n == 640 and bytes(bytearray(vec)) == pattern + pattern
    except Exception:  # the layout is not what we think: any failure means "do not use"
        log.warning("fast frame copy unavailable; using the slow portable copy", exc_info=True)
        return False


def copy_slow(vec: Any) -> bytes:
    """The portable copy (one SWIG call per byte); the baseline for the benchmark."""
    return bytes(bytearray(vec))


def copy_fast(vec: Any) -> bytes:
    """The layout-based copy; only valid after `probe()` returned True."""
    addr, n = vector_span(vec)
    return ctypes.string_at(addr, n) if n else b""
