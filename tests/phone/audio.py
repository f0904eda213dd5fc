"""Test audio: tone WAVs to send, and a Goertzel detector to prove a tone came through."""

from __future__ import annotations

import array
import math
import wave
from pathlib import Path


def write_tone(
    path: Path, freq: float, seconds: float, rate: int = 16000, amplitude: float = 0.3
) -> Path:
    """A mono 16-bit sine WAV."""
    n = int(seconds * rate)
    peak = int(32767 * amplitude)
    samples = array.array(
        "h", (int(peak * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def read_samples(path: Path) -> tuple[array.array[int], int]:
    """Samples of a mono 16-bit WAV that may still be open for writing (header not final):
    everything after the 44-byte header is taken."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
    raw = path.read_bytes()[44:]
    samples = array.array("h")
    samples.frombytes(raw[: len(raw) // 2 * 2])
    return samples, rate


def goertzel_power(samples: array.array[int] | list[int], rate: int, freq: float) -> float:
    """Mean power of `samples` at `freq` (normalised so a full-scale sine gives ~0.5)."""
    n = len(samples)
    if n == 0:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x / 32768 + k * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return 2 * power / (n * n)


def rms(samples: array.array[int] | list[int]) -> float:
    """Root mean square level, 0..1 of full scale."""
    if not samples:
        return 0.0
    return math.sqrt(sum((x / 32768) ** 2 for x in samples) / len(samples))


def tone_report(samples: array.array[int], rate: int, freq: float) -> dict[str, float]:
    """Level and how much of the power sits at `freq` (1.0 = a pure tone), in the loudest
    second of `samples`."""
    win = rate
    best_start, best_level = 0, -1.0
    for start in range(0, max(1, len(samples) - win), win // 4):
        level = rms(samples[start : start + win])  # not decimated: a decimated tone aliases
        if level > best_level:
            best_start, best_level = start, level
    chunk = samples[best_start : best_start + win]
    level = rms(chunk)
    total = level * level
    at_freq = goertzel_power(chunk, rate, freq)
    return {
        "rms": level,
        "purity": at_freq / total if total else 0.0,
        "off_freq_purity": goertzel_power(chunk, rate, freq * 1.37) / total if total else 0.0,
    }
