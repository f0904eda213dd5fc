"""SIP over TLS towards a real PBX: Kamailio's tls module with a throwaway certificate.

The engines register over TLS and call each other through Kamailio over TLS; an engine that
verifies certificates refuses Kamailio's self-signed one and says so in words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.phone.audio import read_samples, tone_report, write_tone
from tests.phone.conftest import USERS
from tests.phone.engine_peer import EnginePeer
from tests.phone.peers import Kamailio, free_port, need
from tests.phone.test_tls import _self_signed
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone


@pytest.fixture
def tls_kamailio(tmp_path: Path) -> Iterator[Kamailio]:
    """Kamailio with UDP/TCP and TLS listeners, its certificate made here by openssl."""
    need("kamailio", "openssl")
    workdir = tmp_path / "kamailio"
    workdir.mkdir()
    cert, key = _self_signed(workdir)
    port = free_port()
    k = Kamailio(
        port=port,
        domain=f"127.0.0.1:{port}",
        users=USERS,
        workdir=workdir,
        tls_cert=cert,
        tls_key=key,
        tls_port=free_port(),
    )
    k.start()
    try:
        yield k
    finally:
        k.stop()


def _register_tls(e: EnginePeer, k: Kamailio) -> dict[str, object]:
    e.request(
        "register",
        user=e.name,
        domain=k.domain,
        password=USERS[e.name],
        registrar=f"127.0.0.1:{k.tls_port}",
        proxy=f"127.0.0.1:{k.tls_port}",
        transport="tls",
    )
    return e.wait_event("reg_state", lambda d: d["state"] in ("Registered", "Failed"), timeout=20)


def test_register_and_call_over_tls_through_kamailio(
    tls_kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    trace = ["--pj-log-level", "5", "-v"]  # SIP messages in the log: Via shows the transport
    alice = engine_factory("alice", mic=write_tone(tmp_path / "a.wav", 1000, 2), extra=trace)
    bob = engine_factory("bob", extra=trace)
    for e in (alice, bob):
        state = _register_tls(e, tls_kamailio)
        assert state["state"] == "Registered", state
    key = alice.request("dial", to=f"sip:bob@{tls_kamailio.domain}")["call"]
    inc = bob.wait_event("incoming_call", timeout=15)
    bob.request("answer", call=inc["call"])
    alice.wait_call_state(key, "confirmed")
    wait_until(
        lambda: bob.speaker.exists() and bob.speaker.stat().st_size > 48000,
        timeout=15,
        what="1.5 s of audio at bob",
    )
    alice.request("hangup", call=key)
    bob.wait_call_state(inc["call"], "disconnected")
    samples, rate = read_samples(bob.speaker)
    assert tone_report(samples, rate, 1000)["purity"] > 0.8
    # the signalling went over TLS on both legs:
    for e in (alice, bob):
        assert "SIP/2.0/TLS" in e.log_text(), f"{e.name} did not use TLS"


def test_a_certificate_that_does_not_verify_is_refused_in_words(
    tls_kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    other_ca, _ = _self_signed(tmp_path)  # a CA that did not sign Kamailio's certificate
    alice = engine_factory("alice", extra=["--tls-verify", "--tls-ca", str(other_ca)])
    state = _register_tls(alice, tls_kamailio)
    print("unverifiable PBX certificate:", state)
    assert state["state"] == "Failed", state
    assert str(state["reason"]).startswith("the PBX's TLS certificate did not verify"), state
