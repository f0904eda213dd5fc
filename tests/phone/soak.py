"""Many calls in a row through one engine process, with SIPp as the far end: RSS per call.

Shared by tests/phone/test_soak.py (short form) and bench/bench_phone_soak.py (a shift).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.phone.audio import write_tone
from tests.phone.engine_peer import EnginePeer
from tests.phone.sipp import Sipp, uas_scenario, write_ulaw_tone
from tests.support.wait import wait_until

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_kib(pid: int) -> int:
    """Resident set size of a process, KiB (from /proc/PID/statm)."""
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE // 1024


@contextmanager
def soak_rig(
    work: Path, calls: int, env: dict[str, str] | None = None
) -> Iterator[tuple[EnginePeer, Sipp]]:
    """An engine (WAV backend, tone mic) and a SIPp UAS that takes `calls` calls."""
    sipp = Sipp(work, uas_scenario(write_ulaw_tone(work / "t.ul", 1000, 1)))
    # SIPp's -timeout is for the whole run (60 s in Sipp.start): a shift takes longer.
    sipp.start(extra=["-m", str(calls), "-timeout", "3600s"])
    engine_env = dict(os.environ, **(env or {}))
    engine = EnginePeer(work, "soak", mic=write_tone(work / "mic.wav", 700, 1), env=engine_env)
    try:
        engine.request("register", user="soak", domain="127.0.0.1", registrar="")
        yield engine, sipp
    finally:
        engine.close()
        sipp.stop()


def one_call(engine: EnginePeer, sipp: Sipp, talk_s: float = 0.2) -> None:
    """Dial SIPp, wait for audio to flow (RTP received), hang up, wait for the end."""
    key = engine.request("dial", to=f"sip:soak@127.0.0.1:{sipp.port}")["call"]
    engine.wait_call_state(key, "confirmed")
    stats = lambda: engine.request("stats", call=key)  # noqa: E731
    wait_until(lambda: stats()["rx_packets"] >= int(talk_s * 50), what=f"audio on {key}")
    engine.request("hangup", call=key)
    engine.wait_call_state(key, "disconnected")
