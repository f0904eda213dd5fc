"""CPU cost of one call in the phone engine, against SIPp carrying the same call.

The engine (WAV backend, a tone as the microphone, the audio bridge and ring buffers in the
path) calls a SIPp UAS that streams u-law back; both processes' CPU time is read from /proc
over the same 10 s of connected call. SIPp is the baseline: a C++ tool that only moves RTP,
so the ratio is the price of the engine (pjsua2 + Python bridge) per call.

    .venv/bin/python bench/bench_phone_call.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.phone.audio import write_tone
from tests.phone.engine_peer import EnginePeer
from tests.phone.sipp import Sipp, uas_scenario, write_ulaw_tone

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> int:
    """Run one call and print CPU % of one core for the engine and for SIPp."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    seconds = ap.parse_args().seconds
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sipp = Sipp(work, uas_scenario(write_ulaw_tone(work / "t.ul", 1000, 2)))
        sipp.start()
        engine = EnginePeer(work, "bench", mic=write_tone(work / "mic.wav", 700, 2))
        try:
            engine.request("register", user="bench", domain="127.0.0.1", registrar="")
            t0 = time.monotonic()
            call = engine.request("dial", to=f"sip:bench@127.0.0.1:{sipp.port}")["call"]
            engine.wait_call_state(call, "confirmed")
            setup_ms = (time.monotonic() - t0) * 1000
            assert sipp.proc is not None
            e0, s0, w0 = cpu_seconds(engine.proc.pid), cpu_seconds(sipp.proc.pid), time.monotonic()
            time.sleep(seconds)  # a benchmark measures over wall time: this is the workload
            e1, s1, w1 = cpu_seconds(engine.proc.pid), cpu_seconds(sipp.proc.pid), time.monotonic()
            quality = engine.request("stats", call=call)
            engine.request("hangup", call=call)
            engine.wait_call_state(call, "disconnected")
            sipp.wait()
        finally:
            engine.close()
            sipp.stop()
    wall = w1 - w0
    eng, base = (e1 - e0) / wall * 100, (s1 - s0) / wall * 100
    print(f"call setup (dial -> confirmed): {setup_ms:.0f} ms")
    print(f"{'process':10} {'CPU % of one core':>18}")
    print(f"{'engine':10} {eng:18.1f}")
    print(f"{'sipp':10} {base:18.1f}")
    print(f"ratio engine/sipp: {eng / base:.1f}x" if base > 0 else "sipp used no measurable CPU")
    print(
        f"quality: MOS {quality.get('mos')}, loss {quality.get('loss_pct')}%, "
        f"jitter {quality.get('jitter_ms')} ms, bridge {quality.get('audio')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
