"""A byte ring buffer between an audio clock and a media clock that never agree.

The device side (a sound card, a WAV pacer) and pjsua2's conference bridge each tick at
"20 ms" by their own crystal, and device callbacks arrive in bursts. The buffer therefore:

- starts handing out audio only after `start_bytes` (about 40 ms) are queued, so a burst
  boundary does not become an immediate underrun; when more than that is queued by then
  (the consumer started late), it starts from the freshest 40 ms, before anything is heard;
  priming again mid-call (the ring ran empty) keeps the backlog: it is late speech;
- on underrun hands out what it has padded with silence, and primes again only when it ran
  empty (counted in `underruns`);
- watches the smallest fill over a window of reads and, when even that minimum stays above
  `target_bytes`, trims the excess: a *standing* queue is latency that would otherwise grow
  forever, while a momentary burst is left alone;
- trims where it cannot be heard: the excess waits for a pause (every queued sample under
  `quiet_peak`, about -40 dBFS, for `pause_ms`) and is cut from the middle of it. Cutting
  the oldest audio at once cut 1-28 spans of speech per 23 s bench call and dented PESQ by
  0.1-0.3 each (1956fc3); a short gap inside a phrase does not count as a pause;
- never lets the queue run to the hard cap while it waits: when no pause comes within
  `defer_ms` of audio, or at once when the standing queue is more than `hold_ms` above the
  target (a sink that took nothing for a while, a capture burst), the excess goes as
  *splices*: one cut of 2.5-12.5 ms per read, at most a fifth of the audio consumed, placed
  where the audio after the cut continues the audio before it best (the lag of the highest
  normalised correlation, as WSOLA does) and joined with a 5 ms crossfade. A continuous
  tone loses whole periods and stays pure; speech loses pitch periods, not syllables.
  Before, a tone that never paused grew the queue to the cap and overflowed (ade2212);
- on overflow of the hard capacity, drops the oldest audio (counted in `dropped_bytes`);
- for a draining consumer that says how much its own buffer holds (`drain_into`'s
  `downstream`: PulseAudio's playback queue), counts that as standing too, and lengthens a
  quiet frame with a little silence when that buffer runs below the target: the device's
  clock runs ahead of the call's, and the alternative is an underrun, a gap the agent hears.

Both ends may run on different threads; one short lock guards the indices. The hot paths
(`write_from`, `read_into`) copy with memmove into a preallocated buffer and allocate nothing
while no trim is due; the pause check and the splice search run only while one is.
"""

from __future__ import annotations

import array
import collections
import ctypes
import logging
import math
import operator
import threading
import time
from typing import Any

log = logging.getLogger(__name__)


class RingBuffer:
    """Single-producer, single-consumer audio FIFO with priming and standing-queue trim.

    Args:
        frame_bytes: size of one 20 ms frame (e.g. 640 for 16 kHz mono 16-bit).
        start_ms / target_ms / capacity_ms: priming threshold, standing-queue target, hard cap.
        frame_ms: duration of one frame, to convert the *_ms values.
        window_reads: how many reads the standing-queue minimum is taken over (50 = 1 s).
        quiet_peak: the largest sample a stretch may hold to be trimmed without being heard.
        pause_ms: how long audio must have been quiet before a trim may cut it.
        defer_ms: how much audio may be consumed while a due trim waits for a pause
            (counted in audio, not reads: a draining consumer reads every 5 ms, a frame
            consumer every 20 ms). 4 s: the bench's sentences run 3-3.5 s without a 120 ms
            pause, and 2 s forced cuts into them.
        hold_ms: the most a standing queue may stand above the target while it waits for a
            pause; beyond it the excess is spliced out at once.
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
        per_ms = frame_bytes / frame_ms
        align = 2  # 16-bit samples: never split one
        self.frame_bytes = frame_bytes
        self.start_bytes = int(per_ms * start_ms) // align * align
        self.target_bytes = int(per_ms * target_ms) // align * align
        self.capacity = int(per_ms * capacity_ms) // align * align
        self._buf = bytearray(self.capacity)
        self._base = ctypes.addressof((ctypes.c_char * self.capacity).from_buffer(self._buf))
        self._read = 0  # absolute counters; index = counter % capacity
        self._write = 0
        self._primed = False
        self._heard = False  # audio has been handed out since the last reset
        self._window = window_reads
        self._reads_in_window = 0
        self._min_standing = self.capacity
        self._lock = threading.Lock()
        self.underruns = 0
        self.dropped_bytes = 0
        self.trimmed_bytes = 0
        self.frames_in = 0
        self.frames_out = 0
        self.quiet_peak = quiet_peak
        self._pause = int(per_ms * pause_ms) // align * align
        self._quiet_since: int | None = None  # read counter when the queue went all quiet
        self._max_defer = int(per_ms * defer_ms)
        self._hold = int(per_ms * hold_ms) // align * align
        self._pending = 0  # standing excess due, waiting for a pause or a splice
        self._due_at = 0  # the read counter when it fell due
        self._next_splice = 0  # no splice before the read counter reaches this
        per_sample_ms = per_ms / align  # samples per ms
        self._xfade = max(8, round(per_sample_ms * 5))  # compare and crossfade: 5 ms
        self._lag_min = max(2, round(per_sample_ms * 2.5))  # shortest splice: 2.5 ms
        self._lag_max = max(self._lag_min, round(per_sample_ms * 12.5))  # 80 Hz pitch
        self._search = round(per_sample_ms * 40)  # where a splice may start: the oldest 40 ms
        self.splices = 0  # trims made without a pause (no pause in time, or over the hold)
        self.padded_bytes = 0  # silence added in pauses to a consumer running low (drain)
        #: The latest trims: (monotonic time, bytes, peak, RMS of what was removed, kind:
        #: "start" for the late-consumer start, "pause", "splice", "stall"; or "pad" for
        #: silence added in a pause), so a quality report can tell a cut through speech
        #: from one through a pause.
        self.trims: collections.deque[tuple[float, int, int, float, str]] = collections.deque(
            maxlen=32
        )

    @property
    def fill(self) -> int:
        """Bytes queued now."""
        return self._write - self._read

    def reset(self) -> None:
        """Forget everything queued (a new call, a device change)."""
        with self._lock:
            self._read = self._write = 0
            self._primed = self._heard = False
            self._pending = self._due_at = self._next_splice = 0
            self._quiet_since = None
            self._reads_in_window = 0
            self._min_standing = self.capacity

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue `data` (copied)."""
        n = len(data)
        if n == 0:
            return
        src = (
            (ctypes.c_char * n).from_buffer_copy(data)
            if not isinstance(data, bytearray)
            else ((ctypes.c_char * n).from_buffer(data))
        )
        self.write_from(ctypes.addressof(src), n)

    def write_from(self, address: int, n: int) -> None:
        """Queue `n` bytes read from native memory at `address` (the zero-copy hot path)."""
        if n <= 0:
            return
        with self._lock:
            if n > self.capacity:
                skip = n - self.capacity
                address += skip
                self.dropped_bytes += skip
                n = self.capacity
            overflow = self.fill + n - self.capacity
            if overflow > 0:
                self._read += overflow
                self.dropped_bytes += overflow
            pos = self._write % self.capacity
            first = min(n, self.capacity - pos)
            ctypes.memmove(self._base + pos, address, first)
            if first < n:
                ctypes.memmove(self._base, address + first, n - first)
            self._write += n
            self.frames_in += 1

    def read_into(self, address: int, n: int) -> bool:
        """Fill `n` bytes at native `address` with queued audio or silence.

        Returns:
            True when real audio was delivered, False when it was silence (priming/underrun).
        """
        with self._lock:
            self.frames_out += 1
            fill = self.fill
            if not self._primed:
                if fill < max(self.start_bytes, n):
                    ctypes.memset(address, 0, n)
                    return False
                fill = self._prime(fill, max(self.start_bytes, n))
            if fill < n:
                # The producer is late (a device callback held up by load): hand out what
                # is here and pad the rest, so a 25 ms stall costs its own length in
                # silence rather than a whole silent frame plus the re-priming wait and the
                # cut that follow it. Only an empty ring primes again.
                self.underruns += 1
                have = fill - fill % 2
                if have <= 0:
                    self._primed = False
                    ctypes.memset(address, 0, n)
                    return False
                self._copy_out(address, have)
                ctypes.memset(address + have, 0, n - have)
                return True
            self._track_standing_queue(fill)
            self._copy_out(address, n)
            return True

    def _prime(self, fill: int, keep: int) -> int:
        # Lock held. Nothing has been heard yet: start from the freshest `keep` bytes, so a
        # consumer that starts late (a sound server taking a second to open the device) does
        # not begin with a backlog that would have to be trimmed audibly later. Once audio
        # has flowed (priming again after running empty), the backlog is the late speech
        # itself: it stays, for the standing-queue trim to take out of a pause (measured:
        # cutting it here cut 5-20 ms of speech after each stall). Returns the fill left.
        excess = fill - keep if not self._heard else 0
        if excess > 0:
            excess -= excess % 2
            self._cut(0, excess, "start")
            fill -= excess
        self._primed = self._heard = True
        self._reads_in_window = 0
        self._min_standing = self.capacity
        return fill

    def _copy_out(self, address: int, n: int) -> None:
        # Lock held; n <= fill.
        pos = self._read % self.capacity
        first = min(n, self.capacity - pos)
        ctypes.memmove(address, self._base + pos, first)
        if first < n:
            ctypes.memmove(address + first, self._base, n - first)
        self._read += n

    def drain_into(self, address: int, most: int, downstream: int | None = None) -> int:
        """Move up to `most` bytes of queued audio to native `address`.

        For a consumer that keeps its own buffer (a sound server's playback stream): it takes
        whatever has arrived, so audio waits in one buffer instead of two. The first drain
        after a reset keeps only the freshest `start_bytes` of any backlog (nothing has been
        heard yet: a sink that took a second to open must not start a second late), and a
        queue that stays above the target for a whole window is trimmed like `read_into`'s.

        `downstream`: what the consumer's own buffer held just before this drain (bytes), when
        it can tell. Then the standing queue is that plus what is here, less the one frame
        the drain hands on: latency stood in the consumer's buffer is cut here, from the
        audio on its way there, out of a pause; and when that buffer is below the target,
        a quiet frame is handed on with up to 2.5 ms of silence after it (the only silence
        this method ever adds). Without it, the frame just drained counts as standing.

        Returns:
            bytes written at `address` (even; 0 when nothing is queued).
        """
        with self._lock:
            fill = self.fill
            low = 0  # bytes the consumer's buffer is below the target, to pad in a pause
            if not self._primed:
                fill = self._prime(fill, self.start_bytes)
            elif downstream is not None:
                self._track_standing_queue(fill, allowance=self.frame_bytes - downstream)
                fill = self.fill
                low = self.target_bytes - (fill + downstream - self.frame_bytes)
            else:
                # A consumer that cannot tell its own queue (Qt's sink; PulseAudio before
                # its first timing update): the frame that just arrived counts too. So a
                # sink that keeps up still shows one frame "standing", and once a window
                # the ring cuts it down to the target, out of a pause, which leaves the
                # sink's queue that much shorter: blind, but it keeps the queue from
                # settling high (docs/architecture.md, "Phone audio").
                self._track_standing_queue(fill, allowance=0)
                fill = self.fill
            n = min(most, fill)
            n -= n % 2
            if n <= 0:
                return 0
            self.frames_out += 1
            pad = min(low + 2 * self._lag_min, most - n) if low > 0 else 0  # 2.5 ms over
            pad -= pad % 2
            if pad > 0 and self._peak(0, n, step=4) > self.quiet_peak:
                pad = 0  # only a quiet frame is lengthened (every 4th sample is enough)
            self._copy_out(address, n)
            if pad > 0:
                ctypes.memset(address + n, 0, pad)
                self.padded_bytes += pad
                self.trims.append((time.monotonic(), pad, 0, 0.0, "pad"))
            return n + pad

    def keep_newest(self, keep: int) -> None:
        """Drop all but the freshest `keep` bytes: a consumer that has stalled (a device
        not taking audio yet) must not find a backlog to be spliced out audibly later."""
        with self._lock:
            excess = self.fill - keep
            excess -= excess % 2
            if excess > 0:
                self._cut(0, excess, "stall")

    def read(self, n: int) -> bytes:
        """`read_into` for Python callers (tests, the WAV backend): always `n` bytes."""
        out = (ctypes.c_char * n)()
        self.read_into(ctypes.addressof(out), n)
        return out.raw

    # Standing-queue trims (lock held throughout) --------------------------------------

    def _track_standing_queue(self, fill: int, allowance: int | None = None) -> None:
        # Called before a read of one frame (`allowance`: the frame about to be read, which
        # is not standing) or before a drain: nothing is allowed when the consumer cannot
        # tell its own queue (what stays is standing), and the frame less that queue when it
        # can (`drain_into`'s `downstream`), so `fill - allowance` is what stands in both.
        allow = self.frame_bytes if allowance is None else allowance
        self._min_standing = min(self._min_standing, fill - allow)
        self._reads_in_window += 1
        if self._reads_in_window >= self._window:
            # What is still due from an earlier window is still in this minimum: recompute.
            self._set_pending(self._min_standing - self.target_bytes)
            self._reads_in_window = 0
            self._min_standing = self.capacity
        over = fill - allow - self.target_bytes
        if over > self._hold and over > self._pending:
            # Far above the target: latency that must not wait a whole window to be seen.
            self._set_pending(over)
        if self._pending:
            self._trim_pending(fill, allow)

    def _set_pending(self, excess: int) -> None:
        excess = max(0, excess - excess % 2)
        if excess and not self._pending:
            self._due_at = self._read
        self._pending = excess
        if not excess:
            self._quiet_since = None

    def _trim_pending(self, fill: int, allow: int) -> None:
        # Never cut below the target plus the frame about to be read, whatever the window
        # said: the fill may have dropped since.
        over = fill - allow - self.target_bytes
        want = min(self._pending, over)
        want -= want % 2
        if want <= 0:
            self._set_pending(0)
            return
        span = self._pause_span(fill, want)
        if span is not None:
            n = span[1]
            self._cut(span[0], n, "pause")
        elif (over <= self._hold and self._read - self._due_at <= self._max_defer) or (
            self._read < self._next_splice and over <= 2 * self._hold
        ):
            # Wait for a pause, or space the splices out; a queue still growing past twice
            # the hold (a sink taking less than it is given) is spliced on every read.
            return
        else:
            n = self._splice(fill, want)
            if not n:  # less than the shortest splice is due: not worth a cut
                self._set_pending(0)
                return
            self.splices += 1
            self._next_splice = self._read + 4 * n  # at most a fifth of what is heard
        self._min_standing = max(0, self._min_standing - n)
        self._set_pending(self._pending - n)

    def _pause_span(self, fill: int, want: int) -> tuple[int, int] | None:
        """(offset, bytes) to cut from the middle of the queue during a pause, or None.

        Runs on every read while a trim is due, so it takes one peak over the queue (40-75
        us for 60 ms at 16 kHz). A pause: every queued sample is quiet, and has been since
        `pause_ms` ago (what was consumed while the queue stayed quiet, plus the queue). One
        cut per pause takes the whole excess, clear of either end.
        """
        span = fill - fill % 2
        if span <= 0 or self._peak(0, span) > self.quiet_peak:
            self._quiet_since = None
            return None
        if self._quiet_since is None:
            self._quiet_since = self._read
        margin = 2 * self._lag_min  # 2.5 ms of quiet kept on either side
        want = min(want, span - 2 * margin)  # a short queue gives what it can, tick by tick
        want -= want % 2
        if self._read - self._quiet_since + span < self._pause or want <= 0:
            return None
        offset = (span - want) // 2
        return offset - offset % 2, want

    def _splice(self, fill: int, want: int) -> int:
        """Remove one stretch of 2.5-12.5 ms (at most `want` bytes) where it joins best.

        Among the oldest 40 ms, the quietest place for the longest splice is taken; there
        the lag whose 5 ms after it best matches the 5 ms at the place (normalised
        correlation; the longest among the near-best, so fewer splices are needed) is cut,
        and its 5 ms are crossfaded into the audio before it. About 160 lags of 80 samples
        at 16 kHz: under a millisecond, made at most once per read while a splice is due.

        Returns:
            bytes removed (0 when `want` is shorter than the shortest splice).
        """
        w, lo = self._xfade, self._lag_min
        hi = min(self._lag_max, want // 2)
        room = fill // 2 - w  # a splice at q needs samples up to q + lag + w
        hi = min(hi, room)
        if hi < lo:
            return 0
        last_q = min(self._search, room - hi)
        x = array.array("h", self._peek(0, 2 * (last_q + hi + w)))
        sq = [0]
        for v in x:
            sq.append(sq[-1] + v * v)
        step = max(1, w // 4)
        q = min(range(0, last_q + 1, step), key=lambda i: sq[i + hi + w] - sq[i])
        a = x[q : q + w]
        ea = sq[q + w] - sq[q]
        best_lag, scores = hi, []
        if ea > 0:
            for lag in range(lo, hi + 1):
                b = x[q + lag : q + lag + w]
                eb = sq[q + lag + w] - sq[q + lag]
                dot = sum(map(operator.mul, a, b))
                scores.append((dot / math.sqrt(ea * eb) if eb > 0 else 0.0, lag))
            top = max(s for s, _ in scores)
            best_lag = max(lag for s, lag in scores if s >= top - 0.02)
        b = x[q + best_lag : q + best_lag + w]
        joined = array.array("h", (round(a[i] + (b[i] - a[i]) * (i + 0.5) / w) for i in range(w)))
        self._poke(2 * (q + best_lag), joined.tobytes())
        n = 2 * best_lag
        self._cut(2 * q, n, "splice")
        return n

    def _peek(self, offset: int, n: int) -> bytes:
        # n queued bytes from `offset` after the oldest (offset + n <= fill).
        cap = self.capacity
        start = (self._read + offset) % cap
        end = start + n
        if end <= cap:
            return bytes(self._buf[start:end])
        return bytes(self._buf[start:]) + bytes(self._buf[: end - cap])

    def _poke(self, offset: int, data: bytes) -> None:
        # Overwrite queued bytes from `offset` after the oldest (offset + len <= fill).
        cap = self.capacity
        start = (self._read + offset) % cap
        end = start + len(data)
        if end <= cap:
            self._buf[start:end] = data
        else:
            split = cap - start
            self._buf[start:] = data[:split]
            self._buf[: end - cap] = data[split:]

    def _peak(self, offset: int, n: int, step: int = 1) -> int:
        # The largest |sample| of n queued bytes from `offset` after the oldest (of every
        # `step`th sample).
        return max(map(abs, array.array("h", self._peek(offset, n))[::step]), default=0)

    def _cut(self, offset: int, n: int, kind: str) -> None:
        # Remove n queued bytes `offset` bytes after the oldest (both even, offset + n <=
        # fill): the older audio moves up to close the gap. Logs what was cut.
        samples = array.array("h", self._peek(offset, n))
        peak = max(map(abs, samples), default=0)
        rms = math.sqrt(sum(map(operator.mul, samples, samples)) / len(samples)) if samples else 0.0
        self.trims.append((time.monotonic(), n, peak, rms, kind))
        head = self._peek(0, offset) if offset else b""
        self._read += n
        if head:
            self._poke(0, head)
        self.trimmed_bytes += n

    def counters(self) -> dict[str, Any]:
        """A copy of the health counters, for the quality event."""
        with self._lock:
            return {
                "fill_bytes": self.fill,
                "underruns": self.underruns,
                "dropped_bytes": self.dropped_bytes,
                "trimmed_bytes": self.trimmed_bytes,
                "padded_bytes": self.padded_bytes,
                "splices": self.splices,
                "trims": [[round(t, 4), b, p, round(r, 1), k] for t, b, p, r, k in self.trims],
            }
