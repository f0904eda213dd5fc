"""Leak check for the default run: the engine's live object counts (`diag`) come back to
their idle values after every call.

RSS is too noisy for the default run (tests/phone/test_soak.py runs it with
SWITCHBOARD_LONG=1); counts are exact. The idle baseline is taken after one warm-up call,
because the bridge makes its tone generator (one conference port) on the first ringback and
keeps it for the engine's life. The conference removes a call's ports on the media clock,
shortly after `disconnected`: each check waits for the counts with a deadline, never a sleep.
A second test provokes a leak on purpose (SWITCHBOARD_PROVOKE_LEAK=1 keeps each ended call
and one port) and checks the counts show it, so the first test can fail.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.phone.engine_peer import EnginePeer
from tests.phone.soak import one_call, soak_rig
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone

CALLS = 30


def _diff(baseline: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """Every leaf that differs, as "pjsua.conf_ports: 3 -> 4"."""
    out = []
    for key in sorted(set(baseline) | set(now)):
        a, b = baseline.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a} -> {b}")
    return out


def _settle(engine: EnginePeer, baseline: dict[str, Any], after: str, timeout: float = 5) -> None:
    """Wait until `diag` equals the baseline again; fail naming every count that differs."""
    last: dict[str, Any] = {}

    def back() -> bool:
        last.update(engine.request("diag"))
        return last == baseline

    try:
        wait_until(back, timeout=timeout, interval=0.05, what=f"idle counts after {after}")
    except TimeoutError:
        pytest.fail(f"counts not back to idle after {after}: {_diff(baseline, last)}")


@pytest.mark.timeout(120)
def test_counts_return_to_idle_after_each_call(tmp_path: Path) -> None:
    with soak_rig(tmp_path, CALLS) as (engine, sipp):
        before = engine.request("diag", ports=True)
        assert before["lib_state"] == "running"
        assert before["engine"]["calls"] == before["pjsua"]["calls"] == 0
        assert before["pjsua"]["accounts"] == before["engine"]["accounts"] == 1
        assert before["pjsua"]["port_names"] == ["Master/sound", "switchboard-headset"]
        one_call(engine, sipp)  # warm-up: the bridge keeps its tone generator from here on
        wait_until(lambda: engine.request("diag")["pjsua"]["conf_ports"] == 3, what="tonegen")
        baseline = engine.request("diag")
        assert baseline["python"]["SoftCall"] == 0 and baseline["python"]["ToneGenerator"] == 1
        assert baseline["audio"]["capturing"] is False
        for i in range(2, CALLS + 1):
            one_call(engine, sipp)
            _settle(engine, baseline, f"call {i}")
        assert sipp.wait() == 0, sipp.output()


@pytest.mark.timeout(60)
def test_a_leaked_call_and_port_show_in_the_counts(tmp_path: Path) -> None:
    env = {"SWITCHBOARD_PROVOKE_LEAK": "1"}
    with soak_rig(tmp_path, 3, env=env) as (engine, sipp):
        one_call(engine, sipp)
        wait_until(lambda: engine.request("diag")["engine"]["leaked"] == 1, what="first leak")
        baseline = engine.request("diag")
        one_call(engine, sipp)
        with pytest.raises(pytest.fail.Exception) as failed:
            _settle(engine, baseline, "a leaking call", timeout=2)
        found = str(failed.value)
        print("provoked leak:", found)
        for count in ("engine.leaked: 1 -> 2", "python.SoftCall: 1 -> 2", "pjsua.conf_ports"):
            assert count in found
    assert os.environ.get("SWITCHBOARD_PROVOKE_LEAK") is None  # the env went to the engine only
