"""A byte ring buffer between an audio clock and a media clock that never agree.

The device side (a sound card, a WAV pacer) and pjsua2's conference bridge each tick at
"20 ms" by their own crystal, and device callbacks arrive in bursts. The buffer therefore:

- starts handing out audio only after `start_bytes` (about 40 ms) are queued, so a burst
  boundary does not become an immediate underrun; when more than that is queued by then
  (the consumer started late), it starts from the freshest 40 ms, before anything is heard;
- on underrun hands out what it has padded with silence, and primes again only when it ran
  empty (counted in `underruns`);
- watches the smallest fill over a window of reads and, when even that minimum stays above
  `target_bytes`, drops the oldest audio down to the target: a *standing* queue is latency
  that would otherwise grow forever, while a momentary burst is left alone;
- on overflow of the hard capacity, drops the oldest audio (counted in `dropped_bytes`).

Both ends may run on different threads; one short lock guards the indices. The hot paths
(`write_from`, `read_into`) copy with memmove into a preallocated buffer and allocate nothing.
"""

from __future__ import annotations

import ctypes
import logging
import threading

log = logging.getLogger(__name__)


class RingBuffer:
    """Single-producer, single-consumer audio FIFO with priming and standing-queue trim.

    Args:
        frame_bytes: size of one 20 ms frame (e.g. 640 for 16 kHz mono 16-bit).
        start_ms / target_ms / capacity_ms: priming threshold, standing-queue target, hard cap.
        frame_ms: duration of one frame, to convert the *_ms values.
        window_reads: how many reads the standing-queue minimum is taken over (50 = 1 s).
    """

    def __init__(
        self,
        frame_bytes: int,
        frame_ms: int = 20,
        start_ms: int = 40,
        target_ms: int = 40,
        capacity_ms: int = 400,
        window_reads: int = 50,
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
        self._window = window_reads
        self._reads_in_window = 0
        self._min_fill = self.capacity
        self._lock = threading.Lock()
        self.underruns = 0
        self.dropped_bytes = 0
        self.trimmed_bytes = 0
        self.frames_in = 0
        self.frames_out = 0

    @property
    def fill(self) -> int:
        """Bytes queued now."""
        return self._write - self._read

    def reset(self) -> None:
        """Forget everything queued (a new call, a device change)."""
        with self._lock:
            self._read = self._write = 0
            self._primed = False
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
        # not begin with a backlog that would have to be trimmed audibly later. Returns the
        # fill left.
        excess = fill - keep
        if excess > 0:
            excess -= excess % 2
            self._read += excess
            self.trimmed_bytes += excess
            fill -= excess
        self._primed = True
        self._reads_in_window = 0
        self._min_fill = self.capacity
        return fill

    def _copy_out(self, address: int, n: int) -> None:
        # Lock held; n <= fill.
        pos = self._read % self.capacity
        first = min(n, self.capacity - pos)
        ctypes.memmove(address, self._base + pos, first)
        if first < n:
            ctypes.memmove(address + first, self._base, n - first)
        self._read += n

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
                fill = self._prime(fill, self.start_bytes)
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
        self._min_fill = min(self._min_fill, fill)
        self._reads_in_window += 1
        if self._reads_in_window < self._window:
            return
        allow = self.frame_bytes if allowance is None else allowance
        excess = self._min_fill - allow - self.target_bytes
        if excess > 0:
            excess -= excess % 2
            self._read += excess
            self.trimmed_bytes += excess
        self._reads_in_window = 0
        self._min_fill = self.capacity

    def counters(self) -> dict[str, int]:
        """A copy of the health counters, for the quality event."""
        with self._lock:
            return {
                "fill_bytes": self.fill,
                "underruns": self.underruns,
                "dropped_bytes": self.dropped_bytes,
                "trimmed_bytes": self.trimmed_bytes,
            }
