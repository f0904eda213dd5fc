"""CPU of the phone engine during one call, against pjsua2's own cost for the same call.

Baseline (the issue's): `bench/pjsua2_wav_call.py`, pjsua2 alone with its own WAV player and
recorder and the engine's media settings, calling a SIPp UAS that streams u-law back. The
engine makes the same call to a fresh SIPp UAS once per backend in --backends: the headset
backends on a private PulseAudio daemon whose null devices are the headset, a tone fed into
the microphone (`pulse`, the Linux default: PulseAudio's own streams; `qt`: QtMultimedia's),
and the WAV backend (files, no sound server). CPU time (user + system, from /proc) is read
over the same length of connected call for each; SIPp's CPU is printed as context (a C++
tool that only moves RTP). Figures are medians over --runs. Target: the engine with the
app's default backend at most 2x the baseline; the first of --backends is the one judged.

Call set-up, INVITE to CONFIRMED: for the engine, from the `dial` request to its `confirmed`
event (what the agent waits for, IPC included); its baseline is SIPp calling SIPp on the same
loopback (the tests' `uac_scenario` against their `uas_scenario`), INVITE sent to 200 OK
received, read from the UAC's message trace, once per run. The pjsua2 column includes
starting its process, so it is context only.

    .venv/bin/python bench/bench_phone_call.py [--seconds 15] [--runs 3] [--backends pulse,qt,wav]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softphone.__main__ import default_backend
from tests.phone.audio import write_tone
from tests.phone.engine_peer import EnginePeer
from tests.phone.pulse import Pulse, stop_recorder
from tests.phone.sipp import Sipp, uac_scenario, uas_scenario, write_ulaw_tone

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


QT_ENV = {"QT_LOGGING_RULES": "qt.multimedia.symbolsresolver=false"}


def measure(pid_of: Callable[[], tuple[int, int]], seconds: float) -> tuple[float, float]:
    """CPU % of one core of (subject, SIPp) over `seconds` of connected call."""
    subject, sipp = pid_of()
    e0, s0, w0 = cpu_seconds(subject), cpu_seconds(sipp), time.monotonic()
    time.sleep(seconds)  # a benchmark measures over wall time: this is the workload
    e1, s1, w1 = cpu_seconds(subject), cpu_seconds(sipp), time.monotonic()
    wall = w1 - w0
    return (e1 - e0) / wall * 100, (s1 - s0) / wall * 100


def baseline_call(work: Path, seconds: float) -> tuple[float, float, float]:
    """pjsua2 alone: (its CPU %, SIPp's CPU %, set-up ms)."""
    sipp = Sipp(work, uas_scenario(write_ulaw_tone(work / "t.ul", 1000, 2)), name="sipp-base")
    sipp.start()
    out = work / "baseline-rec.wav"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("pjsua2_wav_call.py")),
            f"sip:bench@127.0.0.1:{sipp.port}",
            str(write_tone(work / "mic.wav", 700, 2)),
            str(out),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = "?"
        while line and line.strip() not in ("CONFIRMED", "FAILED"):
            line = proc.stdout.readline()  # pjlib prints its banner on stdout first
        if line.strip() != "CONFIRMED":
            raise RuntimeError(f"the pjsua2 baseline call did not connect: {line!r}")
        setup_ms = (time.monotonic() - t0) * 1000
        assert sipp.proc is not None
        sipp_pid = sipp.proc.pid
        cpu, sipp_cpu = measure(lambda: (proc.pid, sipp_pid), seconds)
        proc.stdin.close()
        done: list[str] = []
        while (line := proc.stdout.readline()) and not done:
            done = line.split() if line.startswith("DONE ") else []
        proc.wait(timeout=30)
        if not done or done[0] != "DONE" or int(done[1]) <= 44:
            raise RuntimeError(f"the pjsua2 baseline recorded nothing: {done!r}")
        sipp.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        sipp.stop()
    return cpu, sipp_cpu, setup_ms


def sipp_setup_ms(work: Path) -> float:
    """SIPp calling SIPp on loopback: INVITE sent to 200 OK received, in ms.

    From the UAC's message trace, whose entries carry microsecond timestamps (SIPp's own
    response-time counter is in whole milliseconds, and this takes about one).
    """
    tone = write_ulaw_tone(work / "setup.ul", 1000, 1)
    uas = Sipp(work, uas_scenario(tone), name="sipp-uas")
    uac = Sipp(work, uac_scenario(talk_ms=200), name="sipp-uac")
    (work / "sipp-uac.msg").unlink(missing_ok=True)  # one call's trace, not the last run's
    uas.start()
    try:
        uac.start(f"127.0.0.1:{uas.port}")
        if uac.wait() != 0 or uas.wait() != 0:
            raise RuntimeError(f"SIPp calling SIPp failed: {uac.output()}")
    finally:
        uac.stop()
        uas.stop()
    sent = received = None
    for entry in (work / "sipp-uac.msg").read_text().split("\n-----"):
        head, _, body = entry.lstrip("-").partition("\n")
        stamp = datetime.datetime.fromisoformat(head.strip())
        if sent is None and "message sent" in body and "\nINVITE " in body:
            sent = stamp
        elif sent and "message received" in body and "SIP/2.0 200 OK" in body:
            received = stamp
            break
    if sent is None or received is None:
        raise RuntimeError(f"no INVITE and 200 OK in SIPp's trace: {uac.output()}")
    return (received - sent).total_seconds() * 1000


def engine_call(
    work: Path, seconds: float, backend: str, env: dict[str, str] | None
) -> tuple[float, float, float, dict[str, object]]:
    """The engine: (its CPU %, SIPp's CPU %, set-up ms, the call's quality figures)."""
    sipp = Sipp(work, uas_scenario(write_ulaw_tone(work / "t.ul", 1000, 2)), name=f"sipp-{backend}")
    sipp.start()
    extra = ["--backend", backend]
    engine = EnginePeer(
        work, f"bench-{backend}", mic=write_tone(work / "mic.wav", 700, 2), extra=extra, env=env
    )
    try:
        engine.request("register", user="bench", domain="127.0.0.1", registrar="")
        if backend in ("qt", "pulse"):
            engine.request(
                "set_devices",
                capture="Headset-Microphone",
                playback="Headset-Earpiece",
                ringer="Speakers",
            )
        t0 = time.monotonic()
        call = engine.request("dial", to=f"sip:bench@127.0.0.1:{sipp.port}")["call"]
        engine.wait_call_state(call, "confirmed")
        setup_ms = (time.monotonic() - t0) * 1000
        assert sipp.proc is not None
        sipp_pid = sipp.proc.pid
        cpu, sipp_cpu = measure(lambda: (engine.proc.pid, sipp_pid), seconds)
        quality = engine.request("stats", call=call)
        engine.request("hangup", call=call)
        engine.wait_call_state(call, "disconnected")
        sipp.wait()
    finally:
        engine.close()
        sipp.stop()
    return cpu, sipp_cpu, setup_ms, quality


def main() -> int:
    """Run the three calls --runs times and print the medians and the ratios."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--backends",
        default="pulse,qt,wav",
        help="engine backends to measure, comma-separated; the first is judged",
    )
    a = ap.parse_args()
    backends = [b.strip() for b in a.backends.split(",") if b.strip()]
    judged = backends[0]
    rows: dict[str, list[tuple[float, float, float]]] = {"pjsua2": []}
    rows.update({b: [] for b in backends})
    quality: dict[str, object] = {}
    sipp_setups: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pulse = Pulse(work / "pulse")
        (work / "pulse").mkdir()
        pulse.start()
        feeder = pulse.play(write_tone(work / "feed.wav", 800, a.runs * (a.seconds + 30)))
        try:
            for run in range(a.runs):
                sipp_setups.append(sipp_setup_ms(work))
                rows["pjsua2"].append(baseline_call(work, a.seconds))
                for b in backends:
                    env = None if b == "wav" else dict(pulse.env, **QT_ENV)
                    cpu, sipp_cpu, setup, q = engine_call(work, a.seconds, b, env)
                    rows[b].append((cpu, sipp_cpu, setup))
                    if b == judged:
                        quality = q
                print(
                    f"run {run + 1}: "
                    + ", ".join(
                        f"{k} {v[-1][0]:.1f}% (sipp {v[-1][1]:.1f}%)" for k, v in rows.items()
                    ),
                    flush=True,
                )
        finally:
            stop_recorder(feeder)
            pulse.stop()
    med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3)) for k, v in rows.items()}
    base = med["pjsua2"][0]
    print(f"{'process':40} {'CPU % of one core':>18} {'ratio':>7} {'set-up ms':>10} {'sipp %':>7}")
    labels = {
        "pjsua2": "pjsua2 alone, WAV player+recorder",
        "pulse": "engine, PulseAudio streams",
        "qt": "engine, Qt streams",
        "wav": "engine, WAV backend",
    }
    labels[default_backend()] += " (default)"
    for key, (cpu, sipp_cpu, setup) in med.items():
        ratio = cpu / base if base > 0 else float("nan")
        print(f"{labels[key]:40} {cpu:18.1f} {ratio:6.2f}x {setup:10.0f} {sipp_cpu:7.1f}")
    sipp_setup = statistics.median(sipp_setups)
    print(
        f"call set-up, INVITE to CONFIRMED ({judged} backend): {med[judged][2]:.1f} ms (dial "
        f"request to confirmed event) | SIPp calling SIPp {sipp_setup:.2f} ms (INVITE sent to "
        f"200 OK) | ratio {med[judged][2] / sipp_setup:.1f}x (no target)"
    )
    ratio = med[judged][0] / base if base > 0 else float("inf")
    verdict = "MET" if ratio <= 2.0 else "MISSED"
    print(
        f"engine CPU during one call ({judged} backend): {med[judged][0]:.2f} % | baseline "
        f"{base:.2f} % | ratio {ratio:.2f}x | target <= 2x pjsua2 alone {verdict}"
    )
    print(
        f"quality (last {judged} call): MOS {quality.get('mos')}, "
        f"loss {quality.get('loss_pct')}%, jitter {quality.get('jitter_ms')} ms, "
        f"bridge {quality.get('audio')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
