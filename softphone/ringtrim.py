"""The ring buffer's standing-queue trims: latency taken out where it cannot be heard.

`StandingQueueTrims` is mixed into softphone/ringbuffer.py's `RingBuffer` (read its
docstring for the priming, the underruns and the drain); it keeps apart the part that
decides when and where queued audio is cut. The ring:

- watches the smallest fill over a window of reads and, when even that minimum stays above
  `target_bytes`, trims the excess: a *standing* queue is latency that would otherwise grow
  forever, while a momentary burst is left alone. A stream's first two windows after it
  primes are a fifth as long (200 ms at 50 reads): a consumer starts late by a frame or
  so (PulseAudio plays one period after its prebuffer fills), which left the whole call's
  first seconds 20-30 ms late until a full window and then a pause came, often inside the
  first sentence (measured, session 10);
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
  Before, a tone that never paused grew the queue to the cap and overflowed (ade2212).
"""

from __future__ import annotations

import array
import collections
import math
import operator
import time


class StandingQueueTrims:
    """Standing-queue trims, pauses and splices for `RingBuffer` (lock held throughout).

    The ring provides the attributes annotated below: `RingBuffer.__init__` sets them all
    (bytes unless said; the read counter is absolute, its index `_read % capacity`). The
    mixin reads the config and the ring's memory, and keeps the trim state and counters.
    """

    # The ring's config and memory (read only here, apart from `_read` and `_buf`).
    frame_bytes: int
    target_bytes: int
    capacity: int
    quiet_peak: int  # the largest sample a quiet stretch may hold
    _buf: bytearray  # `capacity` bytes
    _read: int  # absolute read counter: a cut advances it
    _window: int  # reads per standing-queue window
    _start_window: int  # reads per window while `_fast_reads` lasts
    _pause: int  # quiet audio needed before a pause may be cut
    _max_defer: int  # audio consumed while a due trim waits for a pause
    _hold: int  # the most a standing queue may stand above the target while it waits
    _xfade: int  # samples: the splice's compare and crossfade
    _lag_min: int  # samples: the shortest splice
    _lag_max: int  # samples: the longest splice
    _search: int  # samples: where a splice may start, from the oldest
    # The trim state (RingBuffer.reset and _prime reset it).
    _reads_in_window: int
    _fast_reads: int  # reads left in the stream's first, shorter windows
    _min_standing: int
    _quiet_since: int | None  # read counter when the queue went all quiet
    _pending: int  # standing excess due, waiting for a pause or a splice
    _due_at: int  # the read counter when it fell due
    _next_splice: int  # no splice before the read counter reaches this
    # What was trimmed (RingBuffer's public counters).
    trimmed_bytes: int
    splices: int
    trims: collections.deque[tuple[float, int, int, float, str]]

    def _track_standing_queue(self, fill: int, allowance: int | None = None) -> None:
        # Called before a read of one frame (`allowance`: the frame about to be read, which
        # is not standing) or before a drain: nothing is allowed when the consumer cannot
        # tell its own queue (what stays is standing), and the frame less that queue when it
        # can (`drain_into`'s `downstream`), so `fill - allowance` is what stands in both.
        allow = self.frame_bytes if allowance is None else allowance
        self._min_standing = min(self._min_standing, fill - allow)
        self._reads_in_window += 1
        window = self._window
        if self._fast_reads:
            self._fast_reads -= 1
            window = self._start_window
        if self._reads_in_window >= window:
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
