"""How much a 20 ms frame costs to move between pjsua2 and Python, per copy strategy.

Baseline: `bytes(bytearray(frame.buf))` (one SWIG call per byte), the obvious code. Ours:
read the std::vector's begin/end pointers and memmove (softphone.framecopy), straight into
the ring buffer. Prints microseconds per frame and the ratio against the baseline, both
measured in this run on the same frames.

    .venv/bin/python bench/bench_phone_framecopy.py [--frames N]
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pjsua2 as pj

from softphone import framecopy
from softphone.ringbuffer import RingBuffer

FRAME_BYTES = 640  # 20 ms, 16 kHz mono 16-bit


def per_frame_us(fn: object, n: int) -> float:
    """Best of 5 runs of n calls, in microseconds per call."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()  # type: ignore[operator]
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> int:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2000)
    n = ap.parse_args().frames
    if not framecopy.probe(pj.ByteVector):
        print("fast copy not available on this C++ runtime; nothing to compare")
        return 1
    frame = pj.MediaFrame()
    frame.buf = pj.ByteVector(bytes(range(256)) * 2 + bytes(FRAME_BYTES - 512))
    frame.size = FRAME_BYTES
    ring = RingBuffer(FRAME_BYTES)
    out = pj.MediaFrame()
    payload = bytes(range(200)) * 3 + bytes(40)

    def rx_baseline() -> None:
        ring.write(framecopy.copy_slow(frame.buf))
        ring.read(FRAME_BYTES)

    def rx_fast() -> None:
        addr, size = framecopy.vector_span(frame.buf)
        ring.write_from(addr, size)
        ring.read(FRAME_BYTES)

    def tx_baseline() -> None:
        out.buf = pj.ByteVector(payload)

    scratch = (ctypes.c_char * FRAME_BYTES).from_buffer_copy(payload)

    def tx_fast() -> None:
        vec = out.buf
        vec.resize(FRAME_BYTES)
        addr, _ = framecopy.vector_span(vec)
        ctypes.memmove(addr, scratch, FRAME_BYTES)

    rows = [
        ("received frame -> ring", per_frame_us(rx_baseline, n), per_frame_us(rx_fast, n)),
        ("ring -> requested frame", per_frame_us(tx_baseline, n), per_frame_us(tx_fast, n)),
    ]
    print(f"{'path':28} {'baseline us':>12} {'fast us':>9} {'ratio':>7}")
    for name, base, fast in rows:
        print(f"{name:28} {base:12.1f} {fast:9.1f} {base / fast:6.1f}x")
    share = sum(r[2] for r in rows) / 20000 * 100
    print(
        f"bridge copies at 50 frames/s each way: {share:.3f}% of one core "
        f"(baseline {sum(r[1] for r in rows) / 20000 * 100:.3f}%)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
