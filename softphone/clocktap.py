"""Device transfers made on the media clock's thread, so no other thread wakes per frame.

A sound API with its own lock-free single-producer/single-consumer buffers (Qt 6.11's
`QAudioSource` in pull mode and `QAudioSink` in push mode: the audio server's thread fills
or drains them, never Python) can be read and written by whichever one thread consumes or
produces. The conference bridge's clock already wakes every 20 ms and already holds the GIL
in the port's callbacks, so it moves audio there: before it reads the microphone ring it
drains what the device captured into that ring, and after it wrote the speaker ring it
drains that ring into the device's buffer. Pumping the same bytes from a thread of our own
(a 5 ms timer for playback, `readyRead` for capture) cost 3.3-3.9% of a core in Python
wake-ups alone, 2-3x pjsua2's whole cost for a call (bench/bench_phone_call.py).

The rings stay in between: they still prime, pad a late producer and trim standing
queues where they cannot be heard; the device's buffer only bounds how far ahead
playback is written.

The devices are duck-typed (anything with `read(bytearray, int) -> int`,
`bytesToWrite() -> int` and `write(bytes) -> int`, as `QIODevice` has: PySide 6.11
refuses a memoryview there, so the frame is copied once into a bytes object), so this
module imports no Qt and is tested with plain fakes. The device's owner attaches and
detaches them under one lock, which the clock holds while it uses them: a device is never
used after its stream was stopped.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Protocol

from softphone.ringbuffer import RingBuffer


class CaptureDevice(Protocol):
    """What the clock reads captured audio from (`QIODevice.read(bytearray, maxlen)`)."""

    def read(self, buffer: bytearray, maxlen: int, /) -> Any: ...


class PlaybackDevice(Protocol):
    """What the clock writes playback into: free room (`bytesToWrite`), then `write`."""

    def bytesToWrite(self) -> int: ...  # noqa: N802 (Qt's name)

    def write(self, data: bytes, /) -> Any: ...


class ClockTaps:
    """The microphone and speaker transfers one media clock makes on each tick.

    Args:
        chunk_bytes: the most moved per device call (a few frames: a capture backlog
            larger than this is read in several calls).
    """

    def __init__(self, chunk_bytes: int) -> None:
        self._lock = threading.Lock()
        self._capture: tuple[CaptureDevice, RingBuffer] | None = None
        self._playback: tuple[PlaybackDevice, RingBuffer] | None = None
        self._in = bytearray(chunk_bytes)
        self._in_addr = ctypes.addressof((ctypes.c_char * chunk_bytes).from_buffer(self._in))
        self._out = bytearray(chunk_bytes)
        self._out_addr = ctypes.addressof((ctypes.c_char * chunk_bytes).from_buffer(self._out))
        self._playing = False  # the playback device has taken audio out of its buffer
        self._room_after_write = -1  # its room after our first write, while not _playing
        self.capture_reads = 0  # device reads that brought audio (for tests and the trace)
        self.playback_writes = 0

    # The device owner's side (any thread) ----------------------------------------------
    def attach_capture(self, device: CaptureDevice | None, ring: RingBuffer | None) -> None:
        """Start (or with None, stop) moving `device`'s audio into `ring` on each tick.

        Call with None before the device's stream is stopped: once this returns, the clock
        no longer touches the old device.
        """
        with self._lock:
            self._capture = (device, ring) if device is not None and ring is not None else None

    def attach_playback(self, device: PlaybackDevice | None, ring: RingBuffer | None) -> None:
        """Start (or with None, stop) draining `ring` into `device` on each tick; as above."""
        with self._lock:
            self._playback = (device, ring) if device is not None and ring is not None else None
            self._playing = False
            self._room_after_write = -1

    # The media clock's side --------------------------------------------------------------
    def capture(self) -> None:
        """Move everything the capture device holds into its ring (before a frame is read)."""
        with self._lock:
            if self._capture is None:
                return
            device, ring = self._capture
            size = len(self._in)
            while True:
                n = device.read(self._in, size)
                if not n or n <= 0:
                    return
                n -= n % 2
                ring.write_from(self._in_addr, n)
                self.capture_reads += 1
                if n < size:
                    return

    def playback(self) -> None:
        """Drain the speaker ring into the playback device, as far as it has room (after a
        frame was written).

        A new stream may take nothing for a second or two (Qt's PulseAudio sink took 1.4-2 s
        here) after it accepted its first write. Until its room grows, the ring is emptied
        on every tick instead of left to grow: nothing has been heard, so nothing is lost,
        and the ring then starts from its freshest audio. Left to grow, it ran into its cap
        (50 KB dropped at 16 kHz) and then spliced the backlog away, 33-35 splices of about
        a millisecond of Python each, in every call.
        """
        with self._lock:
            if self._playback is None:
                return
            device, ring = self._playback
            free = device.bytesToWrite()
            if not self._playing:
                if self._room_after_write < 0 or free <= self._room_after_write:
                    if self._room_after_write >= 0:
                        ring.reset()  # still not playing: drop what came, nothing is heard
                        return
                else:
                    self._playing = True
            room = min(free, len(self._out))
            if room <= 0:
                return
            n = ring.drain_into(self._out_addr, room)
            if n:
                device.write(ctypes.string_at(self._out_addr, n))
                self.playback_writes += 1
                if not self._playing:
                    self._room_after_write = free - n
