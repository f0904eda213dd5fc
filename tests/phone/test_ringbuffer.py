"""The ring buffers between the device clock and the media clock."""

from __future__ import annotations

import pytest

from softphone.ringbuffer import RingBuffer

pytestmark = pytest.mark.phone

FRAME = 640  # 20 ms at 16 kHz mono 16-bit


def frame(n: int) -> bytes:
    return bytes([n % 251 + 1]) * FRAME


def test_audio_starts_after_40_ms_and_arrives_in_order() -> None:
    rb = RingBuffer(FRAME)
    rb.write(frame(1))
    assert rb.read(FRAME) == bytes(FRAME)  # 20 ms queued: still priming
    rb.write(frame(2))
    assert rb.read(FRAME) == frame(1)
    rb.write(frame(3))
    assert rb.read(FRAME) == frame(2)
    assert rb.read(FRAME) == frame(3)


def test_underrun_gives_silence_and_primes_again() -> None:
    rb = RingBuffer(FRAME)
    for i in range(2):
        rb.write(frame(i))
    rb.read(FRAME)
    rb.read(FRAME)
    assert rb.read(FRAME) == bytes(FRAME)
    assert rb.underruns == 1
    rb.write(frame(7))
    assert rb.read(FRAME) == bytes(FRAME)  # one frame is not 40 ms
    rb.write(frame(8))
    assert rb.read(FRAME) == frame(7)


def test_a_standing_queue_is_trimmed_to_the_target_but_a_burst_is_not() -> None:
    rb = RingBuffer(FRAME, window_reads=50)
    for i in range(10):  # a 200 ms backlog that never drains: standing latency
        rb.write(frame(i))
    for i in range(10, 60):
        rb.write(frame(i))
        rb.read(FRAME)
    assert rb.trimmed_bytes > 0
    assert rb.fill <= rb.target_bytes + FRAME

    burst = RingBuffer(FRAME, window_reads=50)
    for i in range(2):
        burst.write(frame(i))
    burst.read(FRAME)  # primed on exactly 40 ms: nothing to trim at the start
    for i in range(60):  # steady 1:1 flow with a 100 ms burst in the middle, drained after
        if i == 20:
            for j in range(5):
                burst.write(frame(100 + j))
        if i in (30, 32, 34, 36, 38):
            burst.read(FRAME)  # the consumer catches up
        burst.write(frame(i))
        burst.read(FRAME)
    assert burst.trimmed_bytes == 0


def test_overflow_drops_the_oldest_audio() -> None:
    rb = RingBuffer(FRAME, capacity_ms=100)
    for i in range(8):
        rb.write(frame(i))
    assert rb.dropped_bytes == 3 * FRAME  # frames 0-2 overwritten; 3-7 kept
    assert rb.read(FRAME) == frame(6)  # then the first read starts at the freshest 40 ms


def test_wraparound_keeps_bytes_intact() -> None:
    rb = RingBuffer(FRAME, capacity_ms=50)  # not a multiple of the frame size
    data = bytes(range(256)) * 10
    out = b""
    for i in range(0, len(data), 300):
        rb.write(data[i : i + 300])
        if rb.fill >= 2 * FRAME:
            out += rb.read(FRAME)
    assert out and out in data  # one contiguous run, bytes intact across the wrap


def test_a_late_consumer_starts_from_the_freshest_audio() -> None:
    rb = RingBuffer(FRAME)
    for i in range(10):  # 200 ms queued before anyone reads (a device slow to open)
        rb.write(frame(i))
    assert rb.read(FRAME) == frame(8)  # the last 40 ms, not 200 ms of backlog
    assert rb.read(FRAME) == frame(9)
    assert rb.trimmed_bytes == 8 * FRAME


def test_a_late_producer_costs_only_the_missing_part_of_a_frame() -> None:
    rb = RingBuffer(FRAME)
    for i in range(2):
        rb.write(frame(i))
    rb.read(FRAME)
    rb.read(FRAME)
    rb.write(frame(5)[: FRAME // 4])  # a device callback came late and short
    got = rb.read(FRAME)
    assert got == frame(5)[: FRAME // 4] + bytes(FRAME - FRAME // 4)
    assert rb.underruns == 1
    rb.write(frame(6))  # still primed: the next frame plays at once, nothing is cut
    assert rb.read(FRAME) == frame(6)
    assert rb.trimmed_bytes == 0


def _drain(rb: RingBuffer, most: int) -> bytes:
    import ctypes

    out = (ctypes.c_char * most)()
    n = rb.drain_into(ctypes.addressof(out), most)
    return out.raw[:n]


def test_drain_starts_from_the_freshest_audio_and_takes_what_there_is() -> None:
    rb = RingBuffer(FRAME, start_ms=20, target_ms=5)
    for i in range(10):  # the sink took 200 ms to open: nothing has been heard yet
        rb.write(frame(i))
    assert _drain(rb, 4 * FRAME) == frame(9)
    assert _drain(rb, FRAME) == b""  # empty: no silence invented, the sink has its own
    rb.write(frame(10))
    assert _drain(rb, 100) == frame(10)[:100]


def test_drain_trims_a_queue_the_sink_never_takes_down_to_the_target() -> None:
    rb = RingBuffer(FRAME, start_ms=20, target_ms=5, window_reads=10)
    rb.write(frame(0))
    _drain(rb, FRAME)
    for i in range(1, 30):  # a sink slower than the bridge: 20 ms in, 10 ms out per tick
        rb.write(frame(i))
        _drain(rb, FRAME // 2)
    assert rb.trimmed_bytes > 0
    # bounded by about two windows of growth, never reaching the hard cap (400 ms)
    assert rb.fill <= 2 * 10 * (FRAME // 2) + FRAME
    assert rb.dropped_bytes == 0
