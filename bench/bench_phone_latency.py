"""Mouth-to-ear latency through the whole phone path, next to its floor in the same run.

One clock: a private PulseAudio daemon has a stereo null sink `hs`. Its LEFT channel is the
mouth: `mic_left` (a remap of hs.monitor's left channel) is the microphone engine A captures.
Its RIGHT channel is the ear: `ear_right` (a remap sink onto hs's right channel) is where
engine B plays. The mouth plays noise bursts on the left only and one parec records
hs.monitor in stereo, so sent (left) and heard (right) are samples of the same stream;
the latency is the cross-correlation lag between the two channels. The mouth is one pacat
stream connected for the whole run and fed silence between programmes
(`tests.phone.pulse.Mouth`): a paplay joining hs per programme made PulseAudio reconfigure
hs, and B's playback queue stood 30 ms higher for the first 1.5 s of every programme, so
the median swung with which bursts the correlation favoured (session 10, traced).

Path: mic_left -> A's capture stream -> A's bridge -> G.722 RTP on loopback -> B's jitter
buffer -> B's bridge -> B's playback stream -> ear_right, with the same backend on both ends
(`--backend pulse`, the Linux default, or `qt`).

Floor: the device path alone, measured the same way in the same run: `parec` from mic_left
piped into `pacat` on ear_right (both asking PulseAudio for DEVICE_MS, the latency the
backends ask for), plus one 20 ms frame (packetisation) and one 20 ms jitter-buffer frame
that any RTP phone pays. The device path is measured twice per run and the lower figure
kept: a pipe that starts with a backlog keeps it as a standing queue (seen: 15 ms on most
runs, 25-240 ms on some), which is the relay's delay, not the devices'. Keeping the lower
one makes the floor harder to meet, never easier. Target: figure <= 1.15x the floor.

    .venv/bin/python bench/bench_phone_latency.py [--runs 3] [--backend pulse|qt]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.phone.engine_peer import EnginePeer
from tests.phone.pulse import Mouth, Pulse, stop_recorder
from tests.support.wait import wait_until

RATE = 16000
FRAME_MS = 20
JB_FRAME_MS = 20
DEVICE_MS = 10  # the capture fragment both backends ask PulseAudio for
QT_ENV = {"QT_LOGGING_RULES": "qt.multimedia.symbolsresolver=false"}


def bursts(seconds: float = 6.0) -> np.ndarray:
    """Stereo programme: band-limited noise bursts (300-3400 Hz) on the left, silence right."""
    rng = np.random.default_rng(7)
    n = int(seconds * RATE)
    noise = rng.standard_normal(n)
    spec = np.fft.rfft(noise)
    f = np.fft.rfftfreq(n, 1 / RATE)
    spec[(f < 300) | (f > 3400)] = 0
    noise = np.fft.irfft(spec, n)
    gate = np.zeros(n)
    for start in np.arange(1.0, seconds - 1.0, 0.8):  # 0.3 s on, 0.5 s off, 1 s lead
        gate[int(start * RATE) : int((start + 0.3) * RATE)] = 1.0
    left = noise / np.abs(noise).max() * 0.5 * 32767 * gate
    return np.stack([left, np.zeros(n)], axis=1)


def lag_ms(recording: Path) -> float:
    """Cross-correlation lag of the right channel (heard) behind the left (sent), in ms."""
    raw = recording.read_bytes()[44:]
    x = np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<i2").reshape(-1, 2).astype(float)
    left, right = x[:, 0], x[:, 1]
    if np.abs(right).max() < 100:
        raise RuntimeError(f"nothing was heard in {recording}")
    size = 1 << (2 * len(left)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(right, size) * np.conj(np.fft.rfft(left, size)), size)
    lag = int(np.argmax(corr[: len(left)]))  # the ear is behind the mouth: positive lags
    return lag / RATE * 1000


class Rig:
    """The stereo mouth/ear sink on a private PulseAudio daemon."""

    def __init__(self, work: Path) -> None:
        (work / "pulse").mkdir()
        self.pulse = Pulse(work / "pulse")
        self.work = work
        self.mouth: Mouth | None = None

    def __enter__(self) -> Rig:
        p = self.pulse
        p.start()
        for args in (
            [
                "module-null-sink",
                "sink_name=hs",
                "channels=2",
                "channel_map=front-left,front-right",
                "sink_properties=device.description=HS",
            ],
            [
                "module-remap-source",
                "source_name=mic_left",
                "master=hs.monitor",
                "channels=1",
                "master_channel_map=front-left",
                "channel_map=mono",
                "source_properties=device.description=Mic-Left",
            ],
            [
                "module-remap-sink",
                "sink_name=ear_right",
                "master=hs",
                "channels=1",
                "master_channel_map=front-right",
                "channel_map=mono",
                "sink_properties=device.description=Ear-Right",
            ],
        ):
            out = subprocess.run(
                ["pactl", "load-module", *args],
                env=p.env,
                capture_output=True,
                text=True,
                timeout=10,
            )
            if out.returncode != 0:
                raise RuntimeError(f"pactl load-module {args[0]}: {out.stderr}")
        wait_until(lambda: "ear_right" in p.pactl("list", "short", "sinks"), what="ear_right")
        self.mouth = p.mouth("hs", RATE, channels=2)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.mouth is not None:
            self.mouth.close()
        self.pulse.stop()

    def measure(self, name: str, settle: float = 1.5) -> float:
        """Play the bursts into the mouth, record hs.monitor, return the lag in ms."""
        p = self.pulse
        assert self.mouth is not None
        pcm = bursts().astype("<i2").tobytes()
        rec_path = self.work / f"{name}.wav"
        rec = subprocess.Popen(
            [
                "parec",
                "--device=hs.monitor",
                "--latency-msec=20",
                f"--rate={RATE}",
                "--channels=2",
                "--format=s16le",
                "--file-format=wav",
                str(rec_path),
            ],
            env=p.env,
            start_new_session=True,
        )
        try:
            t = time.monotonic() + settle  # null sinks take ~1-1.5 s to accept data
            wait_until(lambda: time.monotonic() > t, what="the sinks to settle")
            self.mouth.say(pcm, timeout=30)
            t = time.monotonic() + 0.5  # what is still in the pipe and the streams
            wait_until(lambda: time.monotonic() > t, what="the tail")
        finally:
            stop_recorder(rec)
        return lag_ms(rec_path)

    def floor(self) -> float:
        """Device path alone: parec mic_left | pacat ear_right, both at DEVICE_MS.

        pacat is connected before parec starts: audio parec captured while pacat was still
        connecting would otherwise wait in the pipe for the whole run, a standing queue that
        made this floor read anywhere from 15 to 95 ms between runs.
        """
        env = self.pulse.env
        out = subprocess.Popen(
            [
                "pacat",
                "--stream-name=relay",
                "--device=ear_right",
                f"--latency-msec={DEVICE_MS}",
                f"--rate={RATE}",
                "--channels=1",
                "--format=s16le",
                "--raw",
            ],
            env=env,
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        wait_until(
            lambda: 'media.name = "relay"' in self.pulse.pactl("list", "sink-inputs"),
            what="the relay's stream",
        )
        assert out.stdin is not None
        cap = subprocess.Popen(
            [
                "parec",
                "--device=mic_left",
                f"--latency-msec={DEVICE_MS}",
                f"--rate={RATE}",
                "--channels=1",
                "--format=s16le",
                "--raw",
            ],
            env=env,
            stdout=out.stdin,
            start_new_session=True,
        )
        out.stdin.close()
        try:
            return self.measure("floor")
        finally:
            for proc in (cap, out):
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)

    def engines(self, backend: str, extra: list[str]) -> float:
        """A (mic_left) calls B (ear_right), both with `backend`; the lag through them."""
        env = dict(self.pulse.env, **QT_ENV)
        opts = ["--backend", backend, "--codecs", "G722", *extra]
        a = EnginePeer(self.work, "a", extra=opts, env=env)
        b = EnginePeer(self.work, "b", extra=opts, env=env)
        try:
            a.request("set_devices", capture="Mic-Left", playback="Speakers", ringer="Speakers")
            b.request(
                "set_devices", capture="Headset-Microphone", playback="Ear-Right", ringer="Speakers"
            )
            for e in (a, b):
                e.request("register", user=e.name, domain="127.0.0.1", registrar="")
            ca = a.request("dial", to=f"sip:b@127.0.0.1:{b.sip_port}")["call"]
            inc = b.wait_event("incoming_call")
            b.request("answer", call=inc["call"])
            a.wait_call_state(ca, "confirmed")
            figure = self.measure("engines", settle=2.0)
            sa, sb = a.request("stats", call=ca), b.request("stats", call=inc["call"])
            print(
                f"  A mic ring: {sa['audio']['mic']}\n  B speaker ring: {sb['audio']['speaker']}"
                f"\n  A device: {sa['audio'].get('device')}, B device: {sb['audio'].get('device')}"
                f"\n  B jitter buffer: {sb.get('jbuf_ms')} ms {sb.get('jbuf')}"
            )
            a.request("hangup", call=ca)
            b.wait_call_state(inc["call"], "disconnected")
            return figure
        finally:
            a.close()
            b.close()


def main() -> int:
    """Measure the floor and the engine path `--runs` times each; print medians and ratio."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--backend",
        default="pulse",
        choices=("pulse", "qt"),
        help="the engines' headset backend (pulse: the Linux default)",
    )
    ap.add_argument(
        "--engine-arg",
        action="append",
        default=[],
        help="extra engine option (repeatable), to try settings",
    )
    args = ap.parse_args()
    floors, figures = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            run = Path(tmp) / f"run{i}"
            run.mkdir()
            with Rig(run) as rig:
                both = [rig.floor(), rig.floor()]
                print(f"run {i}: device path measured {both[0]:.1f} and {both[1]:.1f} ms")
                floors.append(min(both))
                figures.append(rig.engines(args.backend, args.engine_arg))
            print(f"run {i}: device path {floors[-1]:.1f} ms, engines {figures[-1]:.1f} ms")
    device = float(np.median(floors))
    floor = device + FRAME_MS + JB_FRAME_MS
    figure = float(np.median(figures))
    print(
        f"\nmouth-to-ear, {args.backend} backend (median of {args.runs}): {figure:.1f} ms "
        f"(runs: {', '.join(f'{f:.1f}' for f in figures)}); load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"floor: device path {device:.1f} ms + {FRAME_MS} ms frame + {JB_FRAME_MS} ms "
        f"jitter-buffer frame = {floor:.1f} ms"
    )
    print(f"ratio: {figure / floor:.2f}x (target <= 1.15x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
