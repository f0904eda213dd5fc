"""A byte ring buffer between an audio clock and a media clock that never agree.

The device side (a sound card, a WAV pacer) and pjsua2's conference bridge each tick at
"20 ms" by their own crystal, and device callbacks arrive in bursts. The buffer therefore:

- starts handing out audio only after `start_bytes` (about 40 ms) are queued, so a burst
  boundary does not become an immediate underrun; when more than that is queued by then
  (the consumer started late), it starts from the freshest 40 ms, before anything is heard;
- on underrun hands out what it has padded with silence, and primes again only when it ran
  empty (counted in `underruns`);
- watches the smallest fill over a window of reads and, when even that minimum stays above
  `target_bytes`, trims the excess: a *standing* queue is latency that would otherwise grow
  forever, while a momentary burst is left alone;
- trims only where it cannot be heard: the excess waits for a pause, audio that has been
  quiet (every sample under `quiet_peak`, about -40 dBFS) for `pause_ms` and fills the
  whole queue, and is cut from the middle of it. Cutting the oldest audio at once cut
  1-28 spans of speech per 23 s bench call (up to -7 dBFS peak) and dented PESQ by 0.1-0.3
  each; a cut is also a step in delay, which inside a phrase (a stop consonant's closure
  is quiet too) breaks its rhythm, so short gaps do not count. If no pause comes within
  `defer_ms` more of audio (continuous speech or noise), the quietest span is cut anyway,
  in pieces, so the standing queue stays bounded;
- on overflow of the hard capacity, drops the oldest audio (counted in `dropped_bytes`).

Both ends may run on different threads; one short lock guards the indices. The hot paths
(`write_from`, `read_into`) copy with memmove into a preallocated buffer and allocate nothing.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import math
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
        self._min_fill = self.capacity
        self._lock = threading.Lock()
        self.underruns = 0
        self.dropped_bytes = 0
        self.trimmed_bytes = 0
        self.frames_in = 0
        self.frames_out = 0
        self._view = memoryview(self._buf).cast("h")  # samples, for the quiet search
        self.quiet_peak = quiet_peak
        self._pause = int(per_ms * pause_ms)
        self._quiet_since: int | None = None  # read counter when the queue went all quiet
        self._block = max(2, int(per_ms) // align * align)  # 1 ms: the quiet-search grain
        self._max_defer = int(per_ms * defer_ms)
        self._pending = 0  # standing excess due, waiting for a quiet stretch
        self._due_at = 0  # the read counter when it fell due
        self.forced_trims = 0  # trims made without a quiet stretch (the bound hit)
        #: The latest trims: (monotonic time, bytes, peak, RMS of what was dropped), so a
        #: quality report can tell a cut through speech from one through a pause.
        self.trims: collections.deque[tuple[float, int, int, float]] = collections.deque(maxlen=32)

    @property
    def fill(self) -> int:
        """Bytes queued now."""
        return self._write - self._read

    def reset(self) -> None:
        """Forget everything queued (a new call, a device change)."""
        with self._lock:
            self._read = self._write = 0
            self._primed = self._heard = False
            self._pending = 0
            self._quiet_since = None
            self._reads_in_window = 0
            self._min_fill = self.capacity

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
                # Nothing has been heard yet: start from the freshest audio, so a consumer
                # that starts late (a sound server taking a second to open the device) does
                # not begin with a backlog that would have to be trimmed audibly later. Once
                # audio has flowed (priming again after running empty), the backlog is the
                # late speech itself: it stays, and the standing-queue trim takes the excess
                # out of a pause (measured: cutting it here cut 5-20 ms of speech after each stall).
                excess = fill - max(self.start_bytes, n) if not self._heard else 0
                if excess > 0:
                    excess -= excess % 2
                    self._drop(excess)
                    fill -= excess
                self._primed = self._heard = True
                self._reads_in_window = 0
                self._min_fill = self.capacity
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

    def _copy_out(self, address: int, n: int) -> None:
        # Lock held; n <= fill.
        pos = self._read % self.capacity
        first = min(n, self.capacity - pos)
        ctypes.memmove(address, self._base + pos, first)
        if first < n:
            ctypes.memmove(address + first, self._base, n - first)
        self._read += n

    def level(self, offset: int, n: int) -> tuple[int, float]:
        """Peak and RMS of `n` queued bytes starting `offset` bytes after the oldest.

        Lock held (or a single thread, in tests). Pure Python over at most a few hundred
        samples: called only when a trim is due, never per frame.
        """
        cap = self.capacity // 2
        first = (self._read + offset) // 2 % cap
        count = n // 2
        if count <= 0:
            return 0, 0.0
        end = first + count
        parts = (
            [self._view[first:end]] if end <= cap else [self._view[first:], self._view[: end - cap]]
        )
        peak = max(max(map(abs, p)) for p in parts)
        rms = math.sqrt(sum(v * v for p in parts for v in p) / count)
        return peak, rms

    def _drop(self, n: int, offset: int = 0) -> None:
        # Lock held; n and offset even, offset + n <= fill: cut n bytes `offset` bytes after
        # the oldest (the older audio moves up to close the gap) and log what they held.
        peak, rms = self.level(offset, n)
        self.trims.append((time.monotonic(), n, peak, rms))
        if offset:
            cap = self.capacity
            head = bytearray(offset)
            for i in range(offset):  # rare and short (a few hundred bytes): clarity first
                head[i] = self._buf[(self._read + i) % cap]
            for i in range(offset):
                self._buf[(self._read + n + i) % cap] = head[i]
        self._read += n
        self.trimmed_bytes += n

    def drain_into(self, address: int, most: int) -> int:
        """Move up to `most` bytes of queued audio to native `address`; never pads with silence.

        For a consumer that keeps its own buffer (a sound server's playback stream): it takes
        whatever has arrived, so audio waits in one buffer instead of two. The first drain
        after a reset keeps only the freshest `start_bytes` of any backlog (nothing has been
        heard yet: a sink that took a second to open must not start a second late), and a
        queue that stays above the target for a whole window is trimmed like `read_into`'s.

        Returns:
            bytes written at `address` (even; 0 when nothing is queued).
        """
        with self._lock:
            fill = self.fill
            if not self._primed:
                excess = fill - self.start_bytes
                if excess > 0:
                    excess -= excess % 2
                    self._drop(excess)
                    fill -= excess
                self._primed = True
                self._reads_in_window = 0
                self._min_fill = self.capacity
            else:
                self._track_standing_queue(fill, allowance=0)
                fill = self.fill
            n = min(most, fill)
            n -= n % 2
            if n <= 0:
                return 0
            self.frames_out += 1
            self._copy_out(address, n)
            return n

    def read(self, n: int) -> bytes:
        """`read_into` for Python callers (tests, the WAV backend): always `n` bytes."""
        out = (ctypes.c_char * n)()
        self.read_into(ctypes.addressof(out), n)
        return out.raw

    def _track_standing_queue(self, fill: int, allowance: int | None = None) -> None:
        # Called with the lock held, before a read of one frame (`allowance`: the frame about
        # to be read, which is not standing) or before a drain (nothing is allowed: a
        # draining consumer takes all it can, so what stays is standing).
        allow = self.frame_bytes if allowance is None else allowance
        self._min_fill = min(self._min_fill, fill)
        self._reads_in_window += 1
        if self._reads_in_window >= self._window:
            # What is still due from an earlier window is still in this minimum: recompute.
            excess = max(0, self._min_fill - allow - self.target_bytes)
            if excess and not self._pending:
                self._due_at = self._read
            self._pending = excess - excess % 2
            self._reads_in_window = 0
            self._min_fill = self.capacity
        if self._pending:
            self._trim_pending(fill, allow)

    def _trim_pending(self, fill: int, allow: int) -> None:
        # Lock held. Never cut below the target plus the frame about to be read, whatever
        # the window said: the fill may have dropped since.
        want = min(self._pending, fill - allow - self.target_bytes)
        want -= want % 2
        if want <= 0:
            return
        span = self._pause_span(fill, want)
        if span is None and self._read - self._due_at > self._max_defer:
            # No pause came in time: take a quarter of the excess (at least 5 ms) per read
            # from the quietest place, so a large excess goes as several spread cuts rather
            # than one audible gap, and still faster than any queue can grow.
            piece = max(5 * self._block, want // 4)
            span = self._quietest_span(self._block_levels(fill), min(want, piece - piece % 2))
            self.forced_trims += 1
        if span is None:
            return
        offset, n = span
        self._drop(n, offset)
        self._pending -= n
        self._min_fill = max(0, self._min_fill - n)
        self._pending = max(0, self._pending)
        if not self._pending:
            self._quiet_since = None

    def _block_levels(self, fill: int) -> list[tuple[int, float]]:
        # (peak, energy) of each whole 1 ms block queued, oldest first.
        out = []
        for off in range(0, fill - self._block + 1, self._block):
            peak, rms = self.level(off, self._block)
            out.append((peak, rms * rms))
        return out

    def _pause_span(self, fill: int, want: int) -> tuple[int, int] | None:
        """(offset, bytes) to cut from the middle of the queue during a pause, or None.

        Lock held; runs on every read while a trim is due, so it takes one peak over the
        queue (40-75 us for 60 ms at 16 kHz; the block-by-block search is only for a forced
        trim). A pause: every queued sample is quiet, and has been since `pause_ms` ago
        (what was consumed while the queue stayed quiet, plus the queue). One cut per
        pause takes the whole excess, 1 ms clear of either end.
        """
        span = fill - fill % 2
        if span <= 0 or self._peak(0, span) > self.quiet_peak:
            self._quiet_since = None
            return None
        if self._quiet_since is None:
            self._quiet_since = self._read
        if self._read - self._quiet_since + span < self._pause or span < want + 2 * self._block:
            return None
        offset = (span - want) // 2
        return offset - offset % 2, want

    def _peak(self, offset: int, n: int) -> int:
        # Lock held: the largest |sample| of n queued bytes from `offset` after the oldest.
        cap = self.capacity // 2
        first = (self._read + offset) // 2 % cap
        end = first + n // 2
        if end <= cap:
            return max(map(abs, self._view[first:end]), default=0)
        return max(max(map(abs, self._view[first:])), max(map(abs, self._view[: end - cap])))

    def _quietest_span(self, blocks: list[tuple[int, float]], want: int) -> tuple[int, int]:
        """(offset, bytes) of the lowest-energy `want` bytes, for a trim that cannot wait."""
        k = max(1, -(-want // self._block))
        if len(blocks) <= k:
            return 0, want
        sums = [sum(e for _, e in blocks[i : i + k]) for i in range(len(blocks) - k + 1)]
        return sums.index(min(sums)) * self._block, want

    def counters(self) -> dict[str, Any]:
        """A copy of the health counters, for the quality event."""
        with self._lock:
            return {
                "fill_bytes": self.fill,
                "underruns": self.underruns,
                "dropped_bytes": self.dropped_bytes,
                "trimmed_bytes": self.trimmed_bytes,
                "forced_trims": self.forced_trims,
                "trims": [[round(t, 4), b, p, round(r, 1)] for t, b, p, r in self.trims],
            }
