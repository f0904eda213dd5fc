"""Remote workers: STUN servers and ICE from the register command, against a real STUN
server (coturn in STUN-only mode) on loopback.

Covered: the engine asks the configured STUN server and uses the mapped address for media;
a dead STUN server is refused in words. ICE between two engines is in tests/phone/test_ice.py
(two network namespaces joined by veth: pjnath gathers no host candidates on loopback). Not
covered: a real NAT, and STUN and ICE together. On loopback the
mapped address equals the host address, pjnath folds the host candidate into the srflx one
and the answering side fails with PJNATH_EICENOHOSTCAND (Not Acceptable Here); behind a
real NAT the two differ. That needs network namespaces with a NAT between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.phone.audio import read_samples, tone_report, write_tone
from tests.phone.engine_peer import EngineError, EnginePeer
from tests.phone.peers import free_port, start_coturn, stop_group
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone

VERBOSE = ["--pj-log-level", "5", "-v"]  # PJSIP's STUN/ICE/SIP trace in the engine log


@pytest.fixture
def stun_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """coturn answering STUN only on 127.0.0.1; yields (host:port, its log)."""
    port = free_port()
    proc, log = start_coturn(tmp_path, "127.0.0.1", port, "-S")
    try:
        yield f"127.0.0.1:{port}", log
    finally:
        stop_group(proc)


def _call_carries_tone(alice: EnginePeer, bob: EnginePeer, host: str = "127.0.0.1") -> None:
    key = alice.request("dial", to=f"sip:bob@{host}:{bob.sip_port}")["call"]
    inc = bob.wait_event("incoming_call")
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


def test_media_address_comes_from_the_stun_server(
    engine_factory: Callable[..., EnginePeer], stun_server: tuple[str, Path], tmp_path: Path
) -> None:
    server, stun_log = stun_server
    alice = engine_factory("alice", mic=write_tone(tmp_path / "a.wav", 1000, 2), extra=VERBOSE)
    bob = engine_factory("bob")
    r = alice.request(
        "register", user="alice", domain="127.0.0.1", registrar="", stun_servers=[server]
    )
    assert r["stun_servers"] == [server] and r["ice"] is False
    bob.request("register", user="bob", domain="127.0.0.1", registrar="")
    _call_carries_tone(alice, bob)
    log = alice.log_text()
    assert "STUN Binding success response" in log and "STUN mapped address found" in log
    # coturn logs a session per client address it answered
    wait_until(
        lambda: ": session " in stun_log.read_text(errors="replace"),
        timeout=10,
        what="coturn to log the engine's session",
    )


def test_a_dead_stun_server_is_refused_in_words(
    engine_factory: Callable[..., EnginePeer],
) -> None:
    e = engine_factory("alice")
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(EngineError) as err:
        e.request(
            "register",
            timeout=30,
            user="alice",
            domain="127.0.0.1",
            registrar="",
            stun_servers=[dead],
            ice=True,
        )
    assert "STUN" in str(err.value), err.value
    print("dead STUN server:", err.value)


def test_the_engine_answers_other_commands_while_a_stun_server_is_asked(
    engine_factory: Callable[..., EnginePeer],
) -> None:
    """PJSIP needs 7.9 s to give up on a dead STUN server; the loop must not wait with it."""
    e = engine_factory("alice")
    dead = f"127.0.0.1:{free_port()}"
    args = {"user": "alice", "domain": "127.0.0.1", "registrar": "", "stun_servers": [dead]}
    first = e.send("register", **args)
    second = e.send("register", account="other", **args)
    status = e.send("status")
    slow = e.reply(first, timeout=30)
    assert not slow.ok and "STUN" in (slow.error_message or ""), slow
    busy, answered = e.reply(second), e.reply(status)
    assert not busy.ok and busy.error_code == "invalid_state", busy
    assert "still checking the STUN server" in (busy.error_message or ""), busy
    assert answered.ok, answered
    replies = e.reply_order()
    assert replies.index(status) < replies.index(first), "status waited for the STUN check"
    assert replies.index(second) < replies.index(first), "the 2nd register waited for the 1st"
    # the engine is free again: a live check may start now (refused too, but by its answer)
    again = e.send("register", **args)
    assert "STUN" in (e.reply(again, timeout=30).error_message or "")
