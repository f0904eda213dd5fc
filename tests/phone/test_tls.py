"""SIP over TLS between two engines (PJSIP 2.15.1's bundled OpenSSL 1.0.2k on both ends)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.phone.audio import read_samples, tone_report, write_tone
from tests.phone.engine_peer import EnginePeer
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_a_call_over_tls_carries_audio(
    engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    bob = engine_factory("bob", extra=["--tls-cert", str(cert), "--tls-key", str(key)])
    tls_port = bob.ready["sip_ports"]["tls"]
    alice = engine_factory("alice", mic=write_tone(tmp_path / "a.wav", 1000, 2))
    for e in (alice, bob):
        e.request("register", user=e.name, domain="127.0.0.1", registrar="", transport="tls")
    key_ = alice.request("dial", to=f"sip:bob@127.0.0.1:{tls_port};transport=tls")["call"]
    inc = bob.wait_event("incoming_call")
    bob.request("answer", call=inc["call"])
    alice.wait_call_state(key_, "confirmed")
    start = bob.speaker.stat().st_size if bob.speaker.exists() else 0
    wait_until(
        lambda: bob.speaker.exists() and bob.speaker.stat().st_size > start + 48000,
        what="1.5 s of audio at bob",
    )
    alice.request("hangup", call=key_)
    bob.wait_call_state(inc["call"], "disconnected")
    samples, rate = read_samples(bob.speaker)
    assert tone_report(samples, rate, 1000)["purity"] > 0.8


def test_tls_refuses_an_unverifiable_server_when_asked_to_verify(
    engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    bob = engine_factory("bob", extra=["--tls-cert", str(cert), "--tls-key", str(key)])
    tls_port = bob.ready["sip_ports"]["tls"]
    alice = engine_factory("alice", extra=["--tls-verify"])
    alice.request("register", user="alice", domain="127.0.0.1", registrar="", transport="tls")
    key_ = alice.request("dial", to=f"sip:bob@127.0.0.1:{tls_port};transport=tls")["call"]
    end = alice.wait_call_state(key_, "disconnected", timeout=20)
    assert end["code"] >= 400, end  # PJSIP reports the TLS failure as a 5xx/4xx
    print("unverified TLS server refused:", end)
    assert bob.events("incoming_call") == []
