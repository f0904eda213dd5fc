"""A byte ring buffer between an audio clock and a media clock that never agree.

The device side (a sound card, a WAV pacer) and pjsua2's conference bridge each tick at
"20 ms" by their own crystal, and device callbacks arrive in bursts. The buffer therefore:

- starts handing out audio only after `start_bytes` (about 40 ms) are queued, so a burst
  boundary does not become an immediate underrun; when more than that is queued by then
  (the consumer started late), it starts from the freshest 40 ms, before anything is heard;
  priming again mid-call (the ring ran empty) keeps the backlog: it is late speech;
- on underrun hands out what it has padded with silence, and primes again only when it ran
  empty (counted in `underruns`);
- trims a *standing* queue (the smallest fill over a window of reads stays above
  `target_bytes`) out of a pause where it cannot be heard, or, when no pause comes in time
  or the queue stands far above the target, splices it out a pitch period at a time
  (softphone/ringtrim.py, whose docstring says how and why);
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

import collections
import ctypes
import logging
import threading
import time
from typing import Any

from softphone.ringtrim import StandingQueueTrims

log = logging.getLogger(__name__)


class RingBuffer(StandingQueueTrims):
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
        # A stream's first reads: windows of a fifth, twice (see _track_standing_queue).
        self._start_window = max(1, window_reads // 5)
        self._fast_reads = 0
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
            self._reads_in_window = self._fast_reads = 0
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
        if not self._heard:
            self._fast_reads = 2 * self._start_window
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
