"""switchboard-phone's human subcommands, against the same real peers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.phone.audio import read_samples, tone_report, write_tone
from tests.phone.conftest import USERS
from tests.phone.engine_peer import ROOT, EnginePeer
from tests.phone.peers import Kamailio, rtp_base
from tests.support.wait import deadline

pytestmark = pytest.mark.phone


def _cli(*args: str, password: str = "", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SWITCHBOARD_SIP_PASSWORD=password)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "softphone",
            *args,
            "--bind",
            "127.0.0.1",
            "--rtp-port",
            str(rtp_base()),
            "--rtp-range",
            "40",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=deadline(timeout),
    )


def test_register_prints_the_outcome_and_exits_with_it(kamailio: Kamailio) -> None:
    ok = _cli("register", "--user", "alice", "--domain", kamailio.domain, password=USERS["alice"])
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "Registered" in ok.stdout and "state=Registered" in ok.stdout
    bad = _cli("register", "--user", "alice", "--domain", kamailio.domain, password="nope")
    assert bad.returncode == 1
    assert "user name or password" in bad.stdout
    assert "nope" not in bad.stderr


def test_dial_plays_a_wav_to_an_engine_that_answers(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    bob = engine_factory("bob")
    bob.request("register", user="bob", domain=kamailio.domain, password=USERS["bob"])
    bob.wait_event("reg_state", lambda d: d["state"] == "Registered")
    tone = write_tone(tmp_path / "tone.wav", 1200, 3)
    env = dict(os.environ, SWITCHBOARD_SIP_PASSWORD=USERS["alice"])
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "softphone",
            "dial",
            "bob",
            "--user",
            "alice",
            "--domain",
            kamailio.domain,
            "--mic",
            str(tone),
            "--duration",
            "2.5",
            "--bind",
            "127.0.0.1",
            "--rtp-port",
            str(rtp_base()),
            "--rtp-range",
            "40",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        inc = bob.wait_event("incoming_call", timeout=20)
        bob.request("answer", call=inc["call"])
        bob.wait_call_state(inc["call"], "disconnected", timeout=20)
        out, err = cli.communicate(timeout=deadline(20))
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, err[-2000:]
    assert "state=confirmed" in out
    samples, rate = read_samples(bob.speaker)
    report = tone_report(samples, rate, 1200)
    assert report["purity"] > 0.9 and report["rms"] > 0.1, report
