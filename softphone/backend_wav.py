"""WAV files as the headset: deterministic audio for tests and the command line.

The "microphone" reads a WAV file (looping, or silence after its end) and the "speaker"
appends to a WAV file. One pacer thread ticks every 20 ms on the monotonic clock, the way a
sound card would; it is a clock, not synchronisation. Files must be mono or stereo 16-bit
PCM at the bridge's clock rate (stereo is mixed down); anything else is refused in words
rather than resampled badly.
"""

from __future__ import annotations

import array
import logging
import threading
import time
import wave
from pathlib import Path

from softphone.backend import AudioBackend, AudioError, Device, Ring

log = logging.getLogger(__name__)


def read_pcm(path: Path, clock_rate: int) -> bytes:
    """All samples of a WAV file as mono 16-bit PCM.

    Raises:
        AudioError: missing file, wrong format or rate (the message says which).
    """
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            data = w.readframes(w.getnframes())
    except (OSError, wave.Error, EOFError) as exc:
        raise AudioError(f"cannot read {path}: {exc}") from exc
    if width != 2 or channels not in (1, 2):
        raise AudioError(
            f"{path} must be 16-bit mono or stereo PCM (is {width * 8}-bit, {channels} channels)"
        )
    if rate != clock_rate:
        raise AudioError(
            f"{path} is {rate} Hz; the engine runs at {clock_rate} Hz "
            f"(convert it: sox IN -r {clock_rate} -c 1 -b 16 OUT)"
        )
    if channels == 2:
        samples = array.array("h", data)
        mono = array.array(
            "h", ((samples[i] + samples[i + 1]) // 2 for i in range(0, len(samples) - 1, 2))
        )
        data = mono.tobytes()
    return data


class WavBackend(AudioBackend):
    """Microphone from `mic_path` (None: silence), speaker into `speaker_path` (None: dropped).

    Args:
        loop: replay the microphone file from the start when it ends.
    """

    name = "wav"

    def __init__(
        self,
        clock_rate: int,
        mic_path: Path | None = None,
        speaker_path: Path | None = None,
        loop: bool = True,
        frame_ms: int = 20,
    ) -> None:
        super().__init__(clock_rate, frame_ms)
        self.mic_path = mic_path
        self.speaker_path = speaker_path
        self.loop = loop
        self._lock = threading.Lock()
        self._mic_ring: Ring | None = None
        self._spk_ring: Ring | None = None
        self._mic_data = b""
        self._mic_pos = 0
        self._writer: wave.Wave_write | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._ringing = False
        self.rings = 0
        self.frames_played = 0
        self.frames_captured = 0

    # The device side -----------------------------------------------------------------
    def open_capture(self, ring: Ring) -> None:
        data = read_pcm(self.mic_path, self.clock_rate) if self.mic_path else b""
        with self._lock:
            self._mic_data, self._mic_pos, self._mic_ring = data, 0, ring
        log.info("capture from %s", self.mic_path or "silence")
        self._ensure_thread()

    def close_capture(self) -> None:
        with self._lock:
            self._mic_ring = None
        self._stop_if_idle()

    def open_playback(self, ring: Ring) -> None:
        with self._lock:
            if self.speaker_path and self._writer is None:
                try:
                    writer = wave.open(str(self.speaker_path), "wb")  # noqa: SIM115 (open across calls)
                except OSError as exc:
                    raise AudioError(f"cannot write {self.speaker_path}: {exc}") from exc
                writer.setnchannels(1)
                writer.setsampwidth(2)
                writer.setframerate(self.clock_rate)
                self._writer = writer
            self._spk_ring = ring
        log.info("playback into %s", self.speaker_path or "nowhere")
        self._ensure_thread()

    def close_playback(self) -> None:
        with self._lock:
            self._spk_ring = None
        self._stop_if_idle()

    @property
    def capturing(self) -> bool:
        return self._mic_ring is not None

    def start_ringing(self) -> None:
        """No ringer device: remember the state (tests read it through `status`)."""
        self._ringing = True
        self.rings += 1

    def stop_ringing(self) -> None:
        self._ringing = False

    @property
    def ringing(self) -> bool:
        return self._ringing

    def devices(self) -> dict[str, list[Device]]:
        mic = str(self.mic_path) if self.mic_path else "silence"
        spk = str(self.speaker_path) if self.speaker_path else "discard"
        return {
            "capture": [Device(f"wav:{mic}", mic, True)],
            "playback": [Device(f"wav:{spk}", spk, True)],
        }

    def select(
        self, capture: str | None, playback: str | None, ringer: str | None
    ) -> dict[str, str]:
        """Point the microphone/speaker at other files (ids "wav:PATH" or plain paths)."""
        if capture:
            self.mic_path = Path(capture.removeprefix("wav:"))
            if self._mic_ring is not None:
                self.open_capture(self._mic_ring)
        if playback:
            path = Path(playback.removeprefix("wav:"))
            if path != self.speaker_path:
                with self._lock:
                    self._close_writer()
                    self.speaker_path = path
                if self._spk_ring is not None:
                    self.open_playback(self._spk_ring)
        return {
            "capture": str(self.mic_path or "silence"),
            "playback": str(self.speaker_path or "discard"),
            "ringer": ringer or "",
        }

    def close(self) -> None:
        super().close()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None
        with self._lock:
            self._close_writer()

    # The pacer -------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wav-audio", daemon=True)
        self._thread.start()

    def _stop_if_idle(self) -> None:
        """Nothing to do: the pacer idles until `close()`. Stopping it here raced with an
        open that followed at once (ringback ends, the call's audio starts): the new open saw
        the old thread still alive, and then it exited, leaving the call without audio. The
        speaker file likewise stays open for the engine's lifetime (one file, many calls)."""

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _run(self) -> None:
        period = self.frame_ms / 1000
        n = self.frame_bytes
        silence = bytes(n)
        next_tick = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                if self._mic_ring is not None:
                    self._mic_ring.write(self._next_mic_frame(n, silence))
                    self.frames_captured += 1
                if self._spk_ring is not None:
                    frame = self._spk_ring.read(n)
                    if self._writer is not None:
                        self._writer.writeframesraw(frame)
                    self.frames_played += 1
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < -0.2:  # we were suspended: do not burst to catch up
                next_tick = time.monotonic()
            elif delay > 0:
                self._stop.wait(delay)

    def _next_mic_frame(self, n: int, silence: bytes) -> bytes:
        data = self._mic_data
        if not data:
            return silence
        if self._mic_pos >= len(data):
            if not self.loop:
                return silence
            self._mic_pos = 0
        chunk = data[self._mic_pos : self._mic_pos + n]
        self._mic_pos += n
        if len(chunk) < n:
            chunk += silence[: n - len(chunk)]
        return chunk
