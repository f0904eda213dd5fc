"""ClockTaps with plain fakes for the device buffers (no Qt, no sound server)."""

from __future__ import annotations

import array

from softphone.clocktap import ClockTaps
from softphone.ringbuffer import RingBuffer

FRAME = 640  # 20 ms at 16 kHz


def pcm(start: int, n_bytes: int) -> bytes:
    """Recognisable audio: sample i is start + i (wrapped into int16); `start` in samples."""
    return array.array("h", (((start + i) % 30000) for i in range(n_bytes // 2))).tobytes()


class FakeSource:
    """A capture buffer the sound server filled: `read(buffer, maxlen)` as QIODevice has."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.reads = 0

    def read(self, buffer: bytearray, maxlen: int) -> int:
        self.reads += 1
        n = min(maxlen, len(self.data))
        buffer[:n] = self.data[:n]
        del self.data[:n]
        return n


class FakeSink:
    """A playback buffer of `capacity` bytes that the sound server drains with `play`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.queued = bytearray()
        self.played = bytearray()
        self.writes = 0

    def bytesToWrite(self) -> int:  # noqa: N802 (Qt's name)
        return self.capacity - len(self.queued)

    def write(self, data: bytes) -> int:
        assert isinstance(data, bytes)  # PySide 6.11 refuses memoryviews here
        assert len(data) <= self.bytesToWrite()
        self.queued += data
        self.writes += 1
        return len(data)

    def play(self, n: int) -> None:
        self.played += self.queued[:n]
        del self.queued[:n]


def test_capture_moves_everything_the_device_holds_into_the_ring() -> None:
    ring = RingBuffer(FRAME, start_ms=20, target_ms=20)
    taps = ClockTaps(chunk_bytes=2 * FRAME)
    dev = FakeSource()
    taps.capture()  # nothing attached: nothing happens
    taps.attach_capture(dev, ring)
    dev.data += pcm(0, 5 * FRAME)  # a backlog larger than one chunk
    taps.capture()
    assert ring.fill == 5 * FRAME
    assert dev.data == b""
    assert ring.read(5 * FRAME) == pcm(0, 5 * FRAME)
    taps.capture()  # an empty device: one read, nothing queued
    assert ring.fill == 0


def test_capture_stops_touching_a_detached_device() -> None:
    ring = RingBuffer(FRAME)
    taps = ClockTaps(chunk_bytes=FRAME)
    dev = FakeSource()
    taps.attach_capture(dev, ring)
    taps.capture()
    reads = dev.reads
    taps.attach_capture(None, None)
    dev.data += pcm(0, FRAME)
    taps.capture()
    assert dev.reads == reads
    assert ring.fill == 0


def test_playback_writes_only_what_the_device_has_room_for() -> None:
    ring = RingBuffer(FRAME, start_ms=20, target_ms=20)
    taps = ClockTaps(chunk_bytes=4 * FRAME)
    sink = FakeSink(capacity=FRAME + FRAME // 2)
    taps.attach_playback(sink, ring)
    ring.write(pcm(0, FRAME))
    taps.playback()  # the first write: a whole frame fits
    assert bytes(sink.queued) == pcm(0, FRAME)
    sink.play(FRAME // 2)  # the device started: its room grew
    ring.write(pcm(FRAME // 2, FRAME))
    taps.playback()  # room for one frame: all of it
    ring.write(pcm(FRAME, FRAME))
    taps.playback()  # no room: it waits in the ring
    assert ring.fill == FRAME
    sink.play(FRAME)
    taps.playback()
    sink.play(3 * FRAME)
    assert bytes(sink.played) == pcm(0, 3 * FRAME)


def test_a_device_that_has_not_started_does_not_let_the_ring_grow() -> None:
    """Qt's sink took nothing for 1.4-2 s after its first write: the ring must not stand at
    its cap (and be spliced down later) for audio nobody heard."""
    ring = RingBuffer(FRAME, start_ms=20, target_ms=5)
    taps = ClockTaps(chunk_bytes=4 * FRAME)
    sink = FakeSink(capacity=FRAME + FRAME // 2)
    taps.attach_playback(sink, ring)
    for i in range(100):  # 2 s of ticks, the device idle after the first write
        ring.write(pcm(i * FRAME, FRAME))
        taps.playback()
        assert ring.fill <= FRAME
    assert sink.writes == 1
    sink.play(FRAME)  # it starts
    ring.write(pcm(100 * FRAME, FRAME))
    taps.playback()
    assert bytes(sink.queued) == pcm(100 * FRAME, FRAME)  # the freshest frame, not a backlog
    assert ring.dropped_bytes == 0
    assert ring.splices == 0
    for i in range(101, 150):  # playing in step with the ticks: nothing stands
        sink.play(FRAME)
        ring.write(pcm(i * FRAME, FRAME))
        taps.playback()
    assert ring.fill == 0
    assert ring.trimmed_bytes == 0


def test_reattaching_playback_waits_for_the_new_device_to_start() -> None:
    ring = RingBuffer(FRAME, start_ms=20, target_ms=5)
    taps = ClockTaps(chunk_bytes=4 * FRAME)
    first = FakeSink(capacity=2 * FRAME)
    taps.attach_playback(first, ring)
    ring.write(pcm(0, FRAME))
    taps.playback()
    first.play(FRAME)
    ring.write(pcm(FRAME, FRAME))
    taps.playback()
    assert first.writes == 2
    second = FakeSink(capacity=2 * FRAME)  # a device change: a new stream
    ring.reset()
    taps.attach_playback(second, ring)
    for i in range(2, 10):
        ring.write(pcm(i * FRAME, FRAME))
        taps.playback()
    assert second.writes == 1
    assert first.writes == 2
