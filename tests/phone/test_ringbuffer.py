"""The ring buffers between the device clock and the media clock."""

from __future__ import annotations

import array
import ctypes
import math

import pytest

from softphone.ringbuffer import RingBuffer
from tests.phone.audio import goertzel_power, rms

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


def test_a_stalled_sink_keeps_only_the_freshest_frame_and_says_so() -> None:
    """The PulseAudio push: while the server takes nothing (a device not started yet), the
    backlog goes at once, counted as a "stall" trim, instead of being spliced out later."""
    rb = RingBuffer(FRAME, start_ms=20, target_ms=5)
    for i in range(6):
        rb.write(frame(i))
    rb.keep_newest(FRAME)
    assert rb.fill == FRAME and rb.trimmed_bytes == 5 * FRAME
    assert [t[4] for t in rb.trims] == ["stall"]
    assert _drain(rb, 4 * FRAME) == frame(5)
    rb.keep_newest(FRAME)  # nothing over: nothing cut
    assert rb.trimmed_bytes == 5 * FRAME


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


def pcm(level: int, n: int = FRAME) -> bytes:
    """`n` bytes of a square wave at +-`level` (16-bit): speech-loud or pause-quiet."""
    return array.array("h", [level, -level] * (n // 4)).tobytes()


LOUD, QUIET = 12000, 40


def _talk(rb: RingBuffer, out: list[bytes], levels: list[int]) -> None:
    """One 20 ms frame in and one out per level: a producer and consumer on the same beat."""
    for level in levels:
        rb.write(pcm(level))
        out.append(rb.read(FRAME))


def test_a_due_trim_waits_for_a_pause_and_cuts_only_that() -> None:
    rb = RingBuffer(FRAME, start_ms=20, target_ms=10, window_reads=10, pause_ms=100)
    rb.write(pcm(LOUD))
    out = [rb.read(FRAME)]  # primes on the first 20 ms; nothing is cut at the start
    rb.write(pcm(LOUD))  # 20 ms stands before each read: 10 ms above the target
    _talk(rb, out, [LOUD] * 25)  # a phrase longer than two windows: the trim is due, waits
    assert rb.trimmed_bytes == 0
    _talk(rb, out, [QUIET] * 8)  # a 160 ms pause: the excess goes from it
    assert rb.trimmed_bytes == FRAME // 2  # 10 ms, all of it from the pause
    assert [(peak <= QUIET, kind) for _, _, peak, _, kind in rb.trims] == [(True, "pause")]
    assert rb.splices == 0
    _talk(rb, out, [LOUD] * 5)
    # every loud sample that went in came out (or is still queued); only quiet ones were cut
    heard = array.array("h", b"".join(out))
    loud_in = 2 + 25 + 5
    assert sum(1 for v in heard if abs(v) == LOUD) == loud_in * FRAME // 2 - rb.fill // 2


def test_a_short_gap_inside_a_phrase_is_not_a_pause() -> None:
    rb = RingBuffer(FRAME, start_ms=20, target_ms=10, window_reads=10, pause_ms=100)
    rb.write(pcm(LOUD))
    out = [rb.read(FRAME)]
    rb.write(pcm(LOUD))
    _talk(rb, out, [LOUD] * 25)  # the trim is due
    for _ in range(5):  # 40 ms closures between sounds, like a stop consonant's
        _talk(rb, out, [QUIET, QUIET, LOUD, LOUD])
    assert rb.trimmed_bytes == 0  # a cut there would be a step in delay mid-phrase
    _talk(rb, out, [QUIET] * 8)
    assert rb.trimmed_bytes == FRAME // 2


TONE_HZ, RATE = 800, 16000


def tone(start: int, n_samples: int, level: int = LOUD) -> bytes:
    """`n_samples` of a continuous sine from sample `start`: the next piece of one tone."""
    w = 2 * math.pi * TONE_HZ / RATE
    return array.array(
        "h", (round(level * math.sin(w * i)) for i in range(start, start + n_samples))
    ).tobytes()


def _assert_pure(heard: bytes) -> None:
    """A sine with no cut in it: nearly all power at the tone, no step between samples
    larger than the tone's own steepest one (a cut mid-period is such a step)."""
    s = array.array("h", heard)
    total = rms(s) ** 2
    assert total > 0.9 * (LOUD / 32768) ** 2 / 2  # the tone at full level throughout
    assert goertzel_power(s, RATE, TONE_HZ) / total > 0.99
    steepest = LOUD * 2 * math.sin(math.pi * TONE_HZ / RATE)
    assert max(abs(s[i + 1] - s[i]) for i in range(len(s) - 1)) <= steepest * 1.05


def test_a_loud_tone_after_a_capture_burst_is_spliced_back_never_dropped() -> None:
    # A frame consumer (the mic ring, 10 ms target): the device stalls, then delivers 300 ms
    # at once, and the producer runs 2% fast. A tone never pauses; the queue must still come
    # back under the hold before the cap, without a hard drop or a click.
    rb = RingBuffer(FRAME, start_ms=30, target_ms=10)
    per = FRAME // 2
    pos, out, fills = 0, [], []
    rb.write(tone(pos, 3 * per // 2))  # exactly the 30 ms start: nothing cut at the start
    pos += 3 * per // 2
    out.append(rb.read(FRAME))
    rb.write(tone(pos, 15 * per))  # the burst: 300 ms standing at once
    pos += 15 * per
    for i in range(400):  # 8 s
        extra = 16 if i % 5 == 0 else 0  # 2% more produced than consumed
        rb.write(tone(pos, per + extra))
        pos += per + extra
        out.append(rb.read(FRAME))
        fills.append(rb.fill)
    assert rb.dropped_bytes == 0
    assert rb.splices > 0 and all(kind == "splice" for *_, kind in rb.trims)
    assert max(fills) == fills[0]  # never more than the burst left standing
    # back under the hold (100 ms) within 2 s, and kept there against the drift
    assert max(fills[100:]) <= rb.target_bytes + 100 * FRAME // 20 + FRAME
    _assert_pure(b"".join(out[2:]))


def test_a_loud_tone_into_a_sink_that_stalled_is_bounded_and_stays_pure() -> None:
    # A draining consumer (the speaker ring, 5 ms target) whose sink took nothing for 380 ms
    # mid-call, then 5 ms per 5 ms pump tick: the ring must not stand near its cap.
    rb = RingBuffer(FRAME, start_ms=20, target_ms=5)
    per, quarter = FRAME // 2, FRAME // 4
    pos, out, fills = 0, [], []
    rb.write(tone(pos, per))
    pos += per
    out.append(_drain(rb, FRAME))
    for _ in range(19):  # the stall
        rb.write(tone(pos, per))
        pos += per
    for _ in range(300):  # 6 s: 20 ms in per bridge tick, four 5 ms pump ticks out
        rb.write(tone(pos, per))
        pos += per
        for _ in range(4):
            out.append(_drain(rb, quarter))
        fills.append(rb.fill)
    assert rb.dropped_bytes == 0
    assert rb.splices > 0
    assert max(fills[75:]) <= rb.target_bytes + 100 * FRAME // 20 + FRAME
    _assert_pure(b"".join(out))


def test_a_loud_span_is_not_spliced_while_a_pause_comes_in_time() -> None:
    # 60 ms standing (under the hold) through 3 s of loud audio, then a pause: the pause
    # takes all of it; nothing loud is spliced although nothing quiet came for 3 s.
    rb = RingBuffer(FRAME, start_ms=20, target_ms=10, window_reads=10)
    rb.write(pcm(LOUD))
    out = [rb.read(FRAME)]
    rb.write(pcm(LOUD) * 3)
    _talk(rb, out, [LOUD] * 150)
    assert rb.trimmed_bytes == 0 and rb.splices == 0
    _talk(rb, out, [QUIET] * 10)
    assert rb.trimmed_bytes == 3 * FRAME - FRAME // 2
    assert rb.splices == 0 and all(peak <= QUIET for _, _, peak, _, _ in rb.trims)


def test_without_any_pause_the_standing_queue_is_spliced_after_the_deferral() -> None:
    rb = RingBuffer(FRAME, start_ms=20, target_ms=10, window_reads=10, defer_ms=400)
    pos = 0
    per = FRAME // 2
    rb.write(tone(pos, per))
    pos += per
    rb.read(FRAME)
    rb.write(tone(pos, 4 * per))  # 80 ms standing: under the hold, so it waits at first
    pos += 4 * per
    fills = []
    for _ in range(150):
        rb.write(tone(pos, per))
        pos += per
        rb.read(FRAME)
        fills.append(rb.fill)
    assert fills[15] > rb.target_bytes + 3 * FRAME  # still waiting 300 ms in
    assert rb.splices > 0
    assert max(fills[-20:]) <= rb.target_bytes + FRAME  # down to the target, and stays
    assert rb.dropped_bytes == 0


def test_priming_again_mid_call_keeps_the_late_speech() -> None:
    rb = RingBuffer(FRAME, start_ms=20, target_ms=10)
    rb.write(pcm(LOUD))
    assert rb.read(FRAME) == pcm(LOUD)
    assert rb.read(FRAME) == bytes(FRAME)  # the device stalled: the ring ran empty
    rb.write(pcm(LOUD) * 3)  # the stalled audio arrives at once
    assert rb.read(FRAME) == pcm(LOUD)
    # at the start of a call this backlog would be dropped (nothing heard yet); mid-call it
    # is speech, left for the standing-queue trim to take out of a pause
    assert rb.trimmed_bytes == 0
    assert rb.fill == 2 * FRAME


class _Sink:
    """A sound server's playback queue as the ring sees it: it holds what was drained into
    it and the device takes `take` bytes per tick. `heard` is what the device played."""

    def __init__(self, queued: int, take: int = FRAME) -> None:
        self.queued = queued
        self.take = take
        self.heard: list[bytes] = [bytes(queued)]
        self.underruns = 0
        self.before_push: list[int] = []

    def tick(self, rb: RingBuffer, level: int) -> None:
        rb.write(pcm(level))
        self.before_push.append(self.queued)
        out = (ctypes.c_char * (4 * FRAME))()
        n = rb.drain_into(ctypes.addressof(out), 4 * FRAME, downstream=self.queued)
        self.heard.append(out.raw[:n])
        self.queued += n - self.take
        if self.queued < 0:
            self.underruns += 1
            self.queued = 0


def _loud_samples(chunks: list[bytes]) -> int:
    return sum(1 for v in array.array("h", b"".join(chunks)) if abs(v) == LOUD)


def test_latency_standing_in_the_sinks_own_queue_is_cut_here_in_a_pause() -> None:
    """The server's queue settled at 25 ms before each push (an underrun's refill): the
    ring sees it through `downstream`, and cuts the excess from a pause, here."""
    rb = RingBuffer(FRAME, start_ms=20, target_ms=5, window_reads=10, pause_ms=100)
    sink = _Sink(queued=800)  # 25 ms
    for level in [LOUD] * 30:  # speech: the cut is due, and waits
        sink.tick(rb, level)
    assert rb.trimmed_bytes == 0 and sink.before_push[-1] == 800
    for level in [QUIET] * 10 + [LOUD] * 20:
        sink.tick(rb, level)
    assert rb.trimmed_bytes == 800 - 160  # down to the 5 ms target
    assert {kind for *_, kind in rb.trims} == {"pause"} and all(
        peak <= QUIET for _, _, peak, _, _ in rb.trims
    )
    assert sink.before_push[-1] == 160 and sink.underruns == 0
    assert _loud_samples(sink.heard) + rb.fill // 2 == 50 * FRAME // 2


def test_a_device_faster_than_the_call_gets_silence_in_pauses_not_underruns() -> None:
    """A device clock 0.3 % fast drains the server's queue 3 ms a second: without help it
    underruns (a gap, and a refill the agent hears as added delay). The ring pads pauses."""
    rb = RingBuffer(FRAME, start_ms=20, target_ms=5, window_reads=10, pause_ms=100)
    sink = _Sink(queued=320, take=FRAME + 2)  # 10 ms queued, 2 bytes a tick over
    phrase = [LOUD] * 50 + [QUIET] * 20  # 1 s of speech, 400 ms of pause
    for level in phrase * 15:  # about 20 s
        sink.tick(rb, level)
    assert sink.underruns == 0
    assert rb.padded_bytes > 0
    assert {kind for *_, kind in rb.trims} <= {"pause", "pad"}
    # the queue before each push stayed near the target (160 bytes, 5 ms): below it by at
    # most a phrase's drift (50 ticks at 2 bytes), above it by at most one pad's 2.5 ms
    late = sink.before_push[len(sink.before_push) // 2 :]
    assert min(late) >= 160 - 50 * 2 and max(late) <= 160 + 80 + 20
    assert _loud_samples(sink.heard) + rb.fill // 2 == 15 * 50 * FRAME // 2
