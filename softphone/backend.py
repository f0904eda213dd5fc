"""What the audio bridge needs from a device layer (DESIGN.md, Voice).

A backend moves 16-bit mono PCM at the bridge's clock rate between the two ring buffers and
something that makes or takes sound: WAV files (tests), QtMultimedia (macOS, Windows),
PulseAudio's own streams (Linux). It runs its own threads, or none when it is `clocked`
(the bridge's media clock moves its audio); it never calls pjsua2. Capture is opened only
while a call needs the microphone, so the OS microphone indicator is honest.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from softphone.native.ring import NativeRing
from softphone.ringbuffer import RingBuffer

if TYPE_CHECKING:
    from softphone.native.port import NativePort

#: Either ring: the Python one, or the C one the native port reads and writes.
Ring = RingBuffer | NativeRing

RING_ON_S, RING_OFF_S = 1.0, 2.0  # cadence: short enough to notice, long enough not to annoy


def ring_pattern(clock_rate: int) -> bytes:
    """One cycle of the ring (440 + 480 Hz, the North American ring tone, then silence) as
    16-bit mono PCM; played in a loop."""
    import array
    import math

    on = int(RING_ON_S * clock_rate)
    samples = array.array(
        "h",
        (
            int(
                6000
                * (
                    math.sin(2 * math.pi * 440 * i / clock_rate)
                    + math.sin(2 * math.pi * 480 * i / clock_rate)
                )
            )
            for i in range(on)
        ),
    )
    return samples.tobytes() + bytes(int(RING_OFF_S * clock_rate) * 2)


log = logging.getLogger(__name__)


class AudioError(RuntimeError):
    """A device could not be opened or vanished; the message is for the agent."""


@dataclass(frozen=True)
class Device:
    """A device as the agent sees it: a stable id to remember and a name to show."""

    id: str
    name: str
    is_default: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the `devices` reply/event."""
        return {"id": self.id, "name": self.name, "default": self.is_default}


class AudioBackend(abc.ABC):
    """The device side of the bridge.

    Args:
        clock_rate: samples per second of the bridge port (e.g. 16000).
        frame_ms: frame duration (20).
    """

    name = "abstract"
    #: Set by the engine: called with ("devices" | "error", data) from the backend's thread.
    listener: Callable[[str, dict[str, Any]], None] | None = None
    #: Ring priming and standing-queue targets in ms, (start, target), for the mic ring and
    #: the speaker ring. They depend on how the device side moves audio, so each backend
    #: says: 40/40 suits a consumer that reads whole 20 ms frames on its own clock (the WAV
    #: pacer); every ms here is mouth-to-ear latency.
    mic_ring_ms: tuple[int, int] = (40, 40)
    speaker_ring_ms: tuple[int, int] = (40, 40)
    #: True when the bridge's media clock moves the audio: it calls `pull_capture` before
    #: each microphone frame and `push_playback` after each speaker frame, on its own
    #: thread, instead of the backend running threads of its own.
    clocked: bool = False

    def __init__(self, clock_rate: int, frame_ms: int = 20) -> None:
        self.clock_rate = clock_rate
        self.frame_ms = frame_ms
        self.frame_bytes = clock_rate * frame_ms // 1000 * 2

    @abc.abstractmethod
    def open_capture(self, ring: Ring) -> None:
        """Start writing microphone audio into `ring`.

        Raises:
            AudioError: the device cannot be opened.
        """

    @abc.abstractmethod
    def close_capture(self) -> None:
        """Stop the microphone (idempotent)."""

    @abc.abstractmethod
    def open_playback(self, ring: Ring) -> None:
        """Start playing audio taken from `ring`.

        Raises:
            AudioError: the device cannot be opened.
        """

    @abc.abstractmethod
    def close_playback(self) -> None:
        """Stop the speaker (idempotent)."""

    @property
    @abc.abstractmethod
    def capturing(self) -> bool:
        """True while a capture stream is open (the agent's microphone is in use)."""

    @abc.abstractmethod
    def devices(self) -> dict[str, list[Device]]:
        """{"capture": [...], "playback": [...]} as the OS reports them now."""

    @abc.abstractmethod
    def select(
        self, capture: str | None, playback: str | None, ringer: str | None
    ) -> dict[str, str]:
        """Choose devices by id or name; returns what is used (the default when not found).

        Open streams move to the new devices.
        """

    @abc.abstractmethod
    def start_ringing(self) -> None:
        """Play the ring on the ringer device (a call is waiting to be answered).

        Raises:
            AudioError: no device to ring on.
        """

    @abc.abstractmethod
    def stop_ringing(self) -> None:
        """Stop the ring (answered, declined, or the caller gave up); idempotent."""

    @property
    @abc.abstractmethod
    def ringing(self) -> bool:
        """True while the ring plays."""

    def pull_capture(self) -> None:
        """Media clock thread (clocked backends): queue what the microphone delivered in the
        mic ring. Never blocks; a failure is told to the listener, not raised."""
        return None

    def push_playback(self) -> None:
        """Media clock thread (clocked backends): hand the device what the speaker ring
        holds, as much as it has room for. Never blocks; failures as for `pull_capture`."""
        return None

    def attach_native(self, port: NativePort) -> None:
        """The bridge uses the native port (softphone/native): a clocked backend hands it
        its streams to move on the tick, instead of `pull_capture`/`push_playback`. A
        backend with threads of its own needs nothing: it fills and drains the rings."""
        return None

    def native_fault(self, direction: int) -> None:
        """Media clock thread: the native port found a stream it moves failed (direction 0
        capture, 1 playback). Only clocked backends attach streams, so only they hear this."""
        log.warning(
            "the native port reports a failed %s stream", ("capture", "playback")[direction]
        )

    def counters(self) -> dict[str, Any]:
        """The device side's own health counters (server underruns), for the quality event."""
        return {}

    def close(self) -> None:
        """Release everything (engine shutdown)."""
        self.close_capture()
        self.close_playback()
