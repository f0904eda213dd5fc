"""The ring buffers between the device clock and the media clock.

Every test runs against both rings: softphone/ringbuffer.py's `RingBuffer` and its C port,
softphone/native/ring.py's `NativeRing`, which must behave the same byte for byte (the
native port reads and writes the C one). `test_native_ring_matches_python_*` compares the
two on long random sessions.
"""

from __future__ import annotations

import array
import ctypes
import math
import random
import threading
from typing import Any

import pytest

from softphone import native
from softphone.native.ring import NativeRing
from softphone.ringbuffer import RingBuffer
from tests.phone.audio import goertzel_power, rms

Ring = RingBuffer | NativeRing
RingClass = type[RingBuffer] | type[NativeRing]

pytestmark = pytest.mark.phone

FRAME = 640  # 20 ms at 16 kHz mono 16-bit


@pytest.fixture(scope="session")
def native_ring(native_audio_built: None) -> type[NativeRing]:
    """NativeRing, once conftest's `native_audio_built` has built the library (a failed
    build fails there: the engine would quietly fall back to the Python ring, and these
    tests are what says the two agree)."""
    if native.library() is None:
        pytest.fail(f"native ring not available: {native.unavailable()}")
    return NativeRing


@pytest.fixture(params=["python", "native"])
def ring_cls(request: pytest.FixtureRequest) -> RingClass:
    """Each ring implementation in turn."""
    if request.param == "python":
        return RingBuffer
    cls: type[NativeRing] = request.getfixturevalue("native_ring")
    return cls


def frame(n: int) -> bytes:
    return bytes([n % 251 + 1]) * FRAME


def test_audio_starts_after_40_ms_and_arrives_in_order(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME)
    rb.write(frame(1))
    assert rb.read(FRAME) == bytes(FRAME)  # 20 ms queued: still priming
    rb.write(frame(2))
    assert rb.read(FRAME) == frame(1)
    rb.write(frame(3))
    assert rb.read(FRAME) == frame(2)
    assert rb.read(FRAME) == frame(3)


def test_underrun_gives_silence_and_primes_again(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME)
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


def test_a_standing_queue_is_trimmed_to_the_target_but_a_burst_is_not(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME, window_reads=50)
    for i in range(10):  # a 200 ms backlog that never drains: standing latency
        rb.write(frame(i))
    for i in range(10, 60):
        rb.write(frame(i))
        rb.read(FRAME)
    assert rb.trimmed_bytes > 0
    assert rb.fill <= rb.target_bytes + FRAME

    burst = ring_cls(FRAME, window_reads=50)
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


def test_overflow_drops_the_oldest_audio(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME, capacity_ms=100)
    for i in range(8):
        rb.write(frame(i))
    assert rb.dropped_bytes == 3 * FRAME  # frames 0-2 overwritten; 3-7 kept
    assert rb.read(FRAME) == frame(6)  # then the first read starts at the freshest 40 ms


def test_wraparound_keeps_bytes_intact(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME, capacity_ms=50)  # not a multiple of the frame size
    data = bytes(range(256)) * 10
    out = b""
    for i in range(0, len(data), 300):
        rb.write(data[i : i + 300])
        if rb.fill >= 2 * FRAME:
            out += rb.read(FRAME)
    assert out and out in data  # one contiguous run, bytes intact across the wrap


def test_a_late_consumer_starts_from_the_freshest_audio(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME)
    for i in range(10):  # 200 ms queued before anyone reads (a device slow to open)
        rb.write(frame(i))
    assert rb.read(FRAME) == frame(8)  # the last 40 ms, not 200 ms of backlog
    assert rb.read(FRAME) == frame(9)
    assert rb.trimmed_bytes == 8 * FRAME


def test_a_late_producer_costs_only_the_missing_part_of_a_frame(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME)
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


def _drain(rb: Ring, most: int) -> bytes:
    out = (ctypes.c_char * most)()
    n = rb.drain_into(ctypes.addressof(out), most)
    return out.raw[:n]


def test_drain_starts_from_the_freshest_audio_and_takes_what_there_is(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME, start_ms=20, target_ms=5)
    for i in range(10):  # the sink took 200 ms to open: nothing has been heard yet
        rb.write(frame(i))
    assert _drain(rb, 4 * FRAME) == frame(9)
    assert _drain(rb, FRAME) == b""  # empty: no silence invented, the sink has its own
    rb.write(frame(10))
    assert _drain(rb, 100) == frame(10)[:100]


def test_a_stalled_sink_keeps_only_the_freshest_frame_and_says_so(ring_cls: RingClass) -> None:
    """The PulseAudio push: while the server takes nothing (a device not started yet), the
    backlog goes at once, counted as a "stall" trim, instead of being spliced out later."""
    rb = ring_cls(FRAME, start_ms=20, target_ms=5)
    for i in range(6):
        rb.write(frame(i))
    rb.keep_newest(FRAME)
    assert rb.fill == FRAME and rb.trimmed_bytes == 5 * FRAME
    assert [t[4] for t in rb.trims] == ["stall"]
    assert _drain(rb, 4 * FRAME) == frame(5)
    rb.keep_newest(FRAME)  # nothing over: nothing cut
    assert rb.trimmed_bytes == 5 * FRAME


def test_drain_trims_a_queue_the_sink_never_takes_down_to_the_target(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME, start_ms=20, target_ms=5, window_reads=10)
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


def _talk(rb: Ring, out: list[bytes], levels: list[int]) -> None:
    """One 20 ms frame in and one out per level: a producer and consumer on the same beat."""
    for level in levels:
        rb.write(pcm(level))
        out.append(rb.read(FRAME))


def test_a_due_trim_waits_for_a_pause_and_cuts_only_that(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME, start_ms=20, target_ms=10, window_reads=10, pause_ms=100)
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


def test_a_short_gap_inside_a_phrase_is_not_a_pause(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME, start_ms=20, target_ms=10, window_reads=10, pause_ms=100)
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


def test_a_loud_tone_after_a_capture_burst_is_spliced_back_never_dropped(
    ring_cls: RingClass,
) -> None:
    # A frame consumer (the mic ring, 10 ms target): the device stalls, then delivers 300 ms
    # at once, and the producer runs 2% fast. A tone never pauses; the queue must still come
    # back under the hold before the cap, without a hard drop or a click.
    rb = ring_cls(FRAME, start_ms=30, target_ms=10)
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


def test_a_loud_tone_into_a_sink_that_stalled_is_bounded_and_stays_pure(
    ring_cls: RingClass,
) -> None:
    # A draining consumer (the speaker ring, 5 ms target) whose sink took nothing for 380 ms
    # mid-call, then 5 ms per 5 ms pump tick: the ring must not stand near its cap.
    rb = ring_cls(FRAME, start_ms=20, target_ms=5)
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


def test_a_loud_span_is_not_spliced_while_a_pause_comes_in_time(ring_cls: RingClass) -> None:
    # 60 ms standing (under the hold) through 3 s of loud audio, then a pause: the pause
    # takes all of it; nothing loud is spliced although nothing quiet came for 3 s.
    rb = ring_cls(FRAME, start_ms=20, target_ms=10, window_reads=10)
    rb.write(pcm(LOUD))
    out = [rb.read(FRAME)]
    rb.write(pcm(LOUD) * 3)
    _talk(rb, out, [LOUD] * 150)
    assert rb.trimmed_bytes == 0 and rb.splices == 0
    _talk(rb, out, [QUIET] * 10)
    assert rb.trimmed_bytes == 3 * FRAME - FRAME // 2
    assert rb.splices == 0 and all(peak <= QUIET for _, _, peak, _, _ in rb.trims)


def test_without_any_pause_the_standing_queue_is_spliced_after_the_deferral(
    ring_cls: RingClass,
) -> None:
    rb = ring_cls(FRAME, start_ms=20, target_ms=10, window_reads=10, defer_ms=400)
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


def test_priming_again_mid_call_keeps_the_late_speech(ring_cls: RingClass) -> None:
    rb = ring_cls(FRAME, start_ms=20, target_ms=10)
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

    def tick(self, rb: Ring, level: int) -> None:
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


def test_latency_standing_in_the_sinks_own_queue_is_cut_here_in_a_pause(
    ring_cls: RingClass,
) -> None:
    """The server's queue settled at 25 ms before each push (an underrun's refill): the
    ring sees it through `downstream`, and cuts the excess from a pause, here."""
    rb = ring_cls(FRAME, start_ms=20, target_ms=5, window_reads=10, pause_ms=100)
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


def test_a_sink_that_starts_a_frame_late_is_cut_to_the_target_in_the_calls_first_pause(
    ring_cls: RingClass,
) -> None:
    """PulseAudio starts a stream once its prebuffer fills, and the device takes its first
    period a frame later: the server's queue stands 15-20 ms above the target from the
    first push. With only full (1 s) windows that stood until a window had passed and a
    pause came, often a sentence into the call; the first windows are short, so the cut
    falls in the quiet before anyone speaks."""
    rb = ring_cls(FRAME, start_ms=20, target_ms=5, pause_ms=100)  # the default 1 s window
    sink = _Sink(queued=0, take=0)
    for i, level in enumerate([QUIET] * 25 + [LOUD] * 50):  # 0.5 s of quiet, 1 s of speech
        sink.tick(rb, level)
        sink.take = FRAME  # the device starts after the first push
        if i == 24:  # before anyone spoke
            assert rb.trimmed_bytes == FRAME - 160  # 20 ms standing, down to 5 ms
            assert {kind for *_, kind in rb.trims} == {"pause"}
    assert sink.before_push[-1] == 160 and sink.underruns == 0
    assert _loud_samples(sink.heard) + rb.fill // 2 == 50 * FRAME // 2


def test_a_device_faster_than_the_call_gets_silence_in_pauses_not_underruns(
    ring_cls: RingClass,
) -> None:
    """A device clock 0.3 % fast drains the server's queue 3 ms a second: without help it
    underruns (a gap, and a refill the agent hears as added delay). The ring pads pauses."""
    rb = ring_cls(FRAME, start_ms=20, target_ms=5, window_reads=10, pause_ms=100)
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


# The native ring against the Python one ---------------------------------------------


def _voice(rng: random.Random, seconds: float, quiet: int = 328) -> bytes:
    """Speech-like audio, 16 kHz: phrases of voiced syllables (a pitch with harmonics under
    a syllable envelope) with short gaps inside, pauses of low noise (now and then just
    over the quiet level, so a pause check can fail), digital silence, and stretches of a
    steady tone that never pauses (what forces splices)."""
    noise = [rng.randint(-1000, 1000) for _ in range(4096)]
    out = array.array("h")

    def hiss(level: int, n: int) -> list[int]:
        start = rng.randrange(len(noise) - n)
        return [v * level // 1000 for v in noise[start : start + n]]

    while len(out) < seconds * RATE:
        kind = rng.choices(("phrase", "pause", "silence", "tone"), (6, 4, 1, 1))[0]
        if kind == "phrase":
            for _ in range(rng.randint(2, 12)):
                f0 = rng.uniform(90, 250)
                period = round(RATE / f0)
                wave = [
                    sum(math.sin(2 * math.pi * h * i / period) / h for h in (1, 2, 3))
                    for i in range(period)
                ]
                length = rng.randint(8, 60) * 80  # 40-300 ms
                cycles = wave * (length // period + 2)
                level = rng.uniform(1500, 9000)
                blocks = length // 80
                for k in range(blocks):  # the envelope, stepped every 5 ms
                    amp = level * math.sin(math.pi * (k + 0.5) / blocks)
                    chunk = cycles[k * 80 : k * 80 + 80]
                    out.extend(round(amp * v) + d for v, d in zip(chunk, hiss(50, 80), strict=True))
                gap = rng.randint(0, 12) * 80  # 0-60 ms closures between syllables
                out.extend(hiss(rng.choice((100, 300)), gap))
        elif kind == "pause":
            level = rng.choice((quiet // 2, quiet - 20, quiet - 20, quiet + 60))
            for _ in range(rng.randint(1, 40)):  # 20-800 ms
                out.extend(hiss(level, 320))
        elif kind == "silence":
            out.extend([0] * (rng.randint(1, 25) * 320))
        else:
            hz, level = rng.uniform(300, 1200), rng.uniform(3000, 12000)
            w = 2 * math.pi * hz / RATE
            out.extend(round(level * math.sin(w * i)) for i in range(rng.randint(8, 50) * 320))
    return out.tobytes()


def _difference(py: object, c: object) -> str:
    """Where two answers part, short enough to read (the first differing item or byte)."""
    if isinstance(py, tuple | list) and isinstance(c, tuple | list) and len(py) == len(c):
        i = next(i for i, (a, b) in enumerate(zip(py, c, strict=True)) if a != b)
        return f"[{i}] {_difference(py[i], c[i])}"
    if isinstance(py, bytes) and isinstance(c, bytes):
        at = next(
            (i for i, (a, b) in enumerate(zip(py, c, strict=False)) if a != b),
            min(len(py), len(c)),
        )
        return (
            f"{len(py)} and {len(c)} bytes, apart from byte {at}: "
            f"python {py[at : at + 12].hex()} native {c[at : at + 12].hex()}"
        )
    return f"python {py!r:.300} native {c!r:.300}"


class _Twins:
    """A Python and a native ring given the same calls: every answer, every byte handed
    out (and every byte not to be written) and the counters compared after each call."""

    GUARD = 64  # bytes past what a call may write, filled with a pattern that must survive
    FIELDS = (
        "fill",
        "underruns",
        "dropped_bytes",
        "trimmed_bytes",
        "padded_bytes",
        "splices",
        "frames_in",
        "frames_out",
    )

    def __init__(
        self, native_cls: type[NativeRing], frame_bytes: int = FRAME, **config: Any
    ) -> None:
        self.rings: tuple[Ring, Ring] = (
            RingBuffer(frame_bytes, **config),
            native_cls(frame_bytes, **config),
        )
        self.calls = 0
        self.handed = 0  # bytes of audio handed out, a check that the session did something
        self.kinds: set[str] = set()  # the trim kinds seen, to know what was covered
        self.lowest_fill = 0  # below 0: the read index passed the write index
        for name in ("start_bytes", "target_bytes", "capacity", "quiet_peak"):
            self._same(name, *(getattr(r, name) for r in self.rings))

    def _same(self, what: str, py: object, c: object) -> None:
        if py != c:
            pytest.fail(f"call {self.calls} ({what}): {_difference(py, c)}", pytrace=False)

    def _check(self, what: str) -> None:
        self.calls += 1
        states = [
            ([getattr(r, name) for name in self.FIELDS], [trim[1:] for trim in r.trims])
            for r in self.rings
        ]  # the trims without their times: bytes, peak, RMS (unrounded), kind
        self._same(what, *states)
        self.kinds.update(kind for *_, kind in states[0][1])
        self.lowest_fill = min(self.lowest_fill, states[0][0][0])

    def finish(self) -> None:
        """The quality event's dict too, the same but for the times."""
        dicts = [r.counters() for r in self.rings]
        for d in dicts:
            d["trims"] = [row[1:] for row in d["trims"]]
        self._same("counters()", *dicts)

    def write(self, data: bytes) -> None:
        for r in self.rings:
            r.write(data)
        self._check(f"write {len(data)}")

    def _buffers(self, n: int) -> list[ctypes.Array[ctypes.c_char]]:
        return [
            (ctypes.c_char * (n + self.GUARD)).from_buffer_copy(b"\xa5" * (n + self.GUARD))
            for _ in self.rings
        ]

    def read(self, n: int) -> None:
        bufs = self._buffers(n)
        got = [
            (r.read_into(ctypes.addressof(b), n), b.raw)
            for r, b in zip(self.rings, bufs, strict=True)
        ]
        self._same(f"read {n}", *got)
        self.handed += n if got[0][0] else 0
        self._check(f"read {n}")

    def drain(self, most: int, downstream: int | None) -> int:
        bufs = self._buffers(max(most, 0))
        got = [
            (r.drain_into(ctypes.addressof(b), most, downstream), b.raw)
            for r, b in zip(self.rings, bufs, strict=True)
        ]
        self._same(f"drain {most} {downstream}", *got)
        self.handed += got[0][0]
        self._check(f"drain {most} {downstream}")
        return got[0][0]

    def keep_newest(self, keep: int) -> None:
        for r in self.rings:
            r.keep_newest(keep)
        self._check(f"keep_newest {keep}")

    def reset(self) -> None:
        for r in self.rings:
            r.reset()
        self._check("reset")


def _frame_consumer(twins: _Twins, rng: random.Random, audio: bytes, drift: float) -> None:
    """A device producing 20 ms callbacks in bursts (now and then a stall and then all of
    it at once), `drift` faster than the bridge, which reads a frame every 20 ms."""
    owed, pos, tick, held = 0.0, 0, 0, 0
    while pos < len(audio):
        tick += 1  # 5 ms
        owed += FRAME / 4 * (1 + drift)
        if held:
            held -= 1
        elif rng.random() < 0.004:
            held = rng.randint(10, 80)  # the device stalls 50-400 ms
        elif owed >= FRAME or rng.random() < 0.1:
            n = int(owed) - int(owed) % 2
            if rng.random() < 0.3:  # whole callbacks of 10 ms, not always all that is due
                n = min(n, rng.choice((FRAME // 2, FRAME)))
            twins.write(audio[pos : pos + n])
            pos += n
            owed -= n
        if tick % 4 == 0:
            twins.read(FRAME)
            if rng.random() < 0.01:
                twins.read(FRAME)  # the media clock catching up


def _draining_consumer(
    twins: _Twins, rng: random.Random, audio: bytes, sink_drift: float, blind: bool
) -> None:
    """The bridge writing a frame every 20 ms; a pump draining every 5 ms into a sound
    server's queue whose device takes `sink_drift` more than it is given, tells its queue
    (`downstream`) unless `blind` or before its first timing update, and now and then
    takes nothing for a while (a device not started: the pump keeps only the newest
    frame, as pulse_client does)."""
    queued, stalled, full_ticks = 0, 0, 0
    for tick in range(len(audio) // (FRAME // 4)):
        if tick % 4 == 0:
            pos = tick * FRAME // 4
            twins.write(audio[pos : pos + FRAME])
        if stalled:
            stalled -= 1
        else:
            queued = max(0, queued - round(FRAME / 4 * (1 + sink_drift)))
            if rng.random() < 0.002:
                stalled = rng.randint(20, 100)
        room = 0 if stalled else max(0, 4 * FRAME - queued)
        full_ticks = 0 if room else full_ticks + 1
        if full_ticks >= 10:
            twins.keep_newest(FRAME)
        known = not blind and tick > 20 and rng.random() > 0.03
        queued += twins.drain(min(room, 4 * FRAME), queued if known else None)


def _chaos(twins: _Twins, rng: random.Random, audio: bytes) -> None:
    """Calls no device makes: odd sizes, reads larger than a frame, drains told anything,
    resets. Whatever the Python ring does with them, the native one must do too."""
    pos = 0
    while pos < len(audio):
        op = rng.random()
        if op < 0.4:
            n = rng.choice((rng.randint(1, 2 * FRAME), FRAME, rng.randint(0, 9000)))
            twins.write(audio[pos : pos + n])
            pos += n
        elif op < 0.6:
            twins.read(rng.choice((FRAME, rng.randint(0, 3 * FRAME))))
        elif op < 0.95:
            down = rng.choice((None, rng.randint(0, 3 * FRAME), rng.randint(0, 40)))
            twins.drain(rng.randint(-4, 3 * FRAME), down)
        elif op < 0.99:
            twins.keep_newest(rng.randint(0, 3 * FRAME))
        else:
            twins.reset()


def _overreads(twins: _Twins, rng: random.Random, audio: bytes) -> None:
    """Reads of several frames from a ring told to trim at once (window 1, no hold, no
    pause needed): the trim leaves less than the read takes, so the read index passes the
    write index and stale bytes come out. Nonsense, but the Python ring's nonsense, and
    the native one must not read outside its buffer doing it."""
    pos = 0
    while pos < len(audio):
        n = rng.randint(0, 4000)
        twins.write(audio[pos : pos + n])
        pos += n
        twins.read(rng.choice((FRAME, 2 * FRAME, 4 * FRAME, 3001)))
        if rng.random() < 0.3:
            twins.drain(rng.randint(0, 3000), rng.choice((None, 0, 5000)))


SESSIONS = {
    # name: (run, config, trim kinds the session must have made, so the paths are covered)
    "frames, fast producer": (
        lambda t, r, a: _frame_consumer(t, r, a, drift=0.03),
        {"start_ms": 30, "target_ms": 10},
        {"pause", "splice"},
    ),
    "frames, slow producer": (
        lambda t, r, a: _frame_consumer(t, r, a, drift=-0.02),
        {},
        {"start", "pause", "splice"},
    ),
    "frames, short window": (
        lambda t, r, a: _frame_consumer(t, r, a, drift=0.03),
        {"start_ms": 20, "target_ms": 5, "window_reads": 10},
        {"pause", "splice"},
    ),
    "drain, fast sink": (
        lambda t, r, a: _draining_consumer(t, r, a, sink_drift=0.004, blind=False),
        {"start_ms": 20, "target_ms": 5},
        {"pad", "stall"},
    ),
    "drain, slow sink": (
        lambda t, r, a: _draining_consumer(t, r, a, sink_drift=-0.06, blind=False),
        {"start_ms": 20, "target_ms": 5, "window_reads": 10},
        {"pause", "splice", "stall"},
    ),
    "drain, blind": (
        lambda t, r, a: _draining_consumer(t, r, a, sink_drift=0.0, blind=True),
        {"start_ms": 20, "target_ms": 5, "pause_ms": 60},
        {"pause", "stall"},
    ),
    "chaos, small ring": (
        _chaos,
        {"start_ms": 20, "target_ms": 5, "window_reads": 7, "capacity_ms": 150},
        {"start", "pause", "splice", "stall", "pad"},
    ),
    "chaos, eager trims": (
        _chaos,
        {"window_reads": 1, "hold_ms": 30, "defer_ms": 300, "quiet_peak": 500},
        {"start", "pause", "splice", "stall", "pad"},
    ),
    # Other rates: the sizes the C ring derives (its 5 ms crossfade, 2.5-12.5 ms lags, the
    # banker's rounding of 44.1 kHz's 220.5 samples) must come out as Python's.
    "chaos, 44.1 kHz": (
        _chaos,
        {"frame_bytes": 1764, "start_ms": 20, "target_ms": 5, "window_reads": 5},
        {"start", "pause", "splice", "stall", "pad"},
    ),
    "chaos, 8 kHz, 10 ms frames": (
        _chaos,
        {"frame_bytes": 160, "frame_ms": 10, "target_ms": 10, "window_reads": 3},
        {"start", "pause", "splice", "stall"},
    ),
    "overreads": (
        _overreads,
        {"start_ms": 20, "target_ms": 5, "window_reads": 1, "hold_ms": 0, "pause_ms": 0},
        {"splice"},
    ),
}


def test_native_ring_hands_out_its_handle_and_refuses_nonsense(
    native_ring: type[NativeRing],
) -> None:
    rb = native_ring(FRAME)
    assert isinstance(rb.handle, int) and rb.handle
    rb.write(frame(1))
    rb.close()
    assert rb.handle == 0
    rb.close()  # twice is harmless, and so is __del__ after it
    assert rb.fill == 0 and rb.read(FRAME) == bytes(FRAME)  # a freed ring reads as empty
    for config in ({"capacity_ms": 0}, {"frame_ms": 0}, {"start_ms": -1}, {"hold_ms": -20}):
        with pytest.raises(ValueError):
            native_ring(FRAME, **config)


def test_both_ends_on_their_own_threads_account_for_every_byte(ring_cls: RingClass) -> None:
    """The device thread writes while the pump drains (ctypes lets go of the GIL in C, so
    the native ring's two ends really do run at once): every byte written comes out, or is
    counted as dropped or trimmed, whatever the interleaving."""
    rb = ring_cls(FRAME, start_ms=20, target_ms=5, window_reads=10, capacity_ms=100)
    audio = _voice(random.Random("threads"), 10)
    done = threading.Event()

    def produce() -> None:
        for pos in range(0, len(audio), 300):  # odd-sized callbacks, as fast as it goes
            rb.write(audio[pos : pos + 300])
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    out = (ctypes.c_char * FRAME)()
    drained = 0
    while not done.is_set() or rb.fill >= 2:  # an odd byte left could never be drained
        drained += rb.drain_into(ctypes.addressof(out), FRAME // 2)
    producer.join()
    assert rb.padded_bytes == 0  # nothing says the sink is low: no silence added
    assert drained + rb.dropped_bytes + rb.trimmed_bytes == len(audio)


@pytest.mark.parametrize("session", list(SESSIONS))
def test_native_ring_matches_python_call_for_call(
    native_ring: type[NativeRing], session: str
) -> None:
    """Seeded sessions (20-40 s of speech-like audio) through both rings: every answer,
    every byte out and every counter and trim (kind, bytes, peak, RMS) the same after
    each call. No clocks: the times in the trims log are the only thing not compared."""
    run, config, kinds = SESSIONS[session]
    rng = random.Random(session)
    audio = _voice(rng, 10 if session == "overreads" else 20 if "chaos" in session else 40)
    twins = _Twins(native_ring, **config)
    run(twins, rng, audio)
    twins.finish()
    assert kinds <= twins.kinds
    if session == "overreads":
        assert twins.lowest_fill < 0
    elif not session.startswith("chaos"):
        assert twins.handed > len(audio) * 3 // 4  # it moved audio, it did not just stall
