"""A remote worker behind a real NAT: the agent's engine in a private namespace whose only
way out is a router namespace doing iptables MASQUERADE, Kamailio, coturn and the far-end
engine in a "public" namespace.

test_nat.py shows STUN on loopback and test_ice.py ICE between two directly joined
namespaces; neither has a NAT in the path, so neither shows that the address the engine puts
in SDP is one the far end can reach. Here the public side has no route back to the private
range (as on the Internet): a packet to 192.168.77.2 from the public namespace goes nowhere,
and only what the NAT's connection tracking maps comes back.

Topology (addresses are documentation / private ranges that exist only in the namespaces):

    public  198.51.100.1   Kamailio :5060, coturn :3478 (STUN and TURN), bob's engine,
                           SIPp :5070 (a far end that does not latch onto RTP sources)
       | veth
    nat     198.51.100.2   (MASQUERADE out of this side; ip_forward=1)
            192.168.77.1
       | veth
    agent   192.168.77.2   alice's engine, default route via 192.168.77.1

The symmetric-NAT variant adds `--random` to the MASQUERADE rule. What each test showed is
written up in docs/engine-protocol.md ("Behind a real NAT").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.phone.audio import read_samples, tone_report
from tests.phone.engine_peer import EnginePeer
from tests.phone.nat_lab import (
    AGENT,
    ALICE_HZ,
    BOB_HZ,
    NAT_PUBLIC,
    SERVER,
    STUN,
    TURN_PASSWORD,
    TURN_USER,
    NatLab,
    SippUas,
    invite_media,
    kamailio_contacts,
    nat_lab,
    sip_messages,
)
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone


def _heard(peer: EnginePeer, freq: int) -> float:
    """How pure the tone of `freq` Hz is in the last 1.5 s of `peer`'s speaker (1.0: nothing
    else). The end of the file is the call's media (`_call` hangs up after 2 s of RTP); its
    start holds the caller's ringback, longer or shorter with the set-up time."""
    samples, rate = read_samples(peer.speaker)
    return tone_report(samples[-int(1.5 * rate) :], rate, freq)["purity"]


def _idle_counts(peer: EnginePeer) -> dict[str, object]:
    """`diag` without the tone generator, which the first ring or ringback creates once and
    keeps (docs/engine-protocol.md, `diag`): any other difference after a call is a leak."""
    d = peer.request("diag")
    tone = d["python"].pop("ToneGenerator")
    d["pjsua"]["conf_ports"] -= tone
    return d


def _rx(peer: EnginePeer, call: str) -> int:
    return int(peer.request("stats", call=call)["rx_packets"])


def _has_rx(peer: EnginePeer, call: str, packets: int) -> Callable[[], bool]:
    """A wait_until condition: `peer` received `packets` RTP packets on `call`."""
    return lambda: _rx(peer, call) >= packets


def _is_idle(peer: EnginePeer, before: dict[str, object]) -> Callable[[], bool]:
    """A wait_until condition: `peer`'s counts are back to `before`."""
    return lambda: _idle_counts(peer) == before


def _call(alice: EnginePeer, bob: EnginePeer, to: str, bob_calls: bool = False) -> tuple[str, str]:
    """A call between alice and bob (alice calls unless `bob_calls`); both wait for 100 RTP
    packets (2 s), then the caller hangs up. Returns (alice's call, bob's call)."""
    caller, callee = (bob, alice) if bob_calls else (alice, bob)
    n = len(callee.events("incoming_call"))
    out = caller.request("dial", to=to)["call"]
    inc = callee.wait_event("incoming_call", after=n, timeout=15)["call"]
    callee.request("answer", call=inc)
    caller.wait_call_state(out, "confirmed", timeout=15)
    for peer, call in ((caller, out), (callee, inc)):
        wait_until(_has_rx(peer, call, 100), timeout=10, what=f"RTP at {peer.name}")
    caller.request("hangup", call=out)
    caller.wait_call_state(out, "disconnected")
    callee.wait_call_state(inc, "disconnected")
    return (inc, out) if bob_calls else (out, inc)


def _call_hearing_nothing(alice: EnginePeer, sipp: SippUas, case: str) -> list[str]:
    """alice calls SIPp and sends 2 s of RTP; she must receive none (SIPp's RTP went where
    her SDP pointed, which the NAT does not map back); she hangs up. Returns the SDP media
    address of each INVITE she sent."""
    call = alice.request("dial", to=sipp.uri)["call"]
    alice.wait_call_state(call, "confirmed", timeout=15)
    wait_until(
        lambda: alice.request("stats", call=call)["tx_packets"] >= 100,
        what="2 s of alice's RTP sent towards SIPp",
    )
    st = alice.request("stats", call=call)
    offered = invite_media(alice, "TX")
    print(f"{case}, alice towards SIPp:", offered, st)
    assert st["rx_packets"] == 0, st
    alice.request("hangup", call=call)
    alice.wait_call_state(call, "disconnected")
    return offered


@pytest.fixture
def lab(tmp_path: Path, engine_factory: Callable[..., EnginePeer]) -> Iterator[NatLab]:
    """The topology with a port-preserving NAT (Linux MASQUERADE: one mapping per local
    port whatever the destination, replies only from where packets went)."""
    with nat_lab(tmp_path, engine_factory) as built:
        yield built


@pytest.mark.timeout(60)
def test_without_stun_the_agent_advertises_its_private_address(lab: NatLab) -> None:
    assert lab.kamailio is not None
    alice = lab.engine("alice", lab.agent, "0.0.0.0", ALICE_HZ)
    lab.register(alice)
    contacts = kamailio_contacts(lab.kamailio, "alice")
    print("Kamailio saw alice's REGISTERs:", contacts)
    # The REGISTER leaves through the NAT with the private Contact; PJSIP reads the
    # address Kamailio saw (Via received/rport) and registers again with that one.
    assert contacts[0].startswith(f"{NAT_PUBLIC}:") and f"@{AGENT}:" in contacts[0]
    wait_until(
        lambda: f"@{NAT_PUBLIC}:" in kamailio_contacts(lab.kamailio, "alice")[-1],  # type: ignore[arg-type]
        what="alice re-registered with the NAT's address as Contact",
    )
    # Media has no such fix: the SDP carries the private address. A far end that sends
    # where the SDP says (SIPp here) sends into the void: the agent hears nothing.
    offered = _call_hearing_nothing(alice, SippUas(lab, BOB_HZ), "without STUN")
    assert offered[0].startswith(f"{AGENT}:")


@pytest.mark.timeout(60)
def test_without_stun_only_a_latching_far_end_saves_the_audio(lab: NatLab) -> None:
    """A PJSIP far end re-targets its RTP at the source of what it receives ("Remote RTP
    address switched"), so audio flows although the SDP is wrong: the reason the default
    (no STUN) works against some PBXes and not others."""
    assert lab.kamailio is not None
    alice = lab.engine("alice", lab.agent, "0.0.0.0", ALICE_HZ)
    bob = lab.engine("bob", lab.public, SERVER, BOB_HZ)
    lab.register(bob)
    lab.register(alice)
    _call(alice, bob, f"sip:bob@{lab.kamailio.domain}")
    offered = invite_media(bob, "RX")
    print("bob got alice's SDP:", offered)
    assert offered[0].startswith(f"{AGENT}:")
    assert f"Remote RTP address switched to {NAT_PUBLIC}:" in bob.log_text()
    heard = _heard(alice, BOB_HZ), _heard(bob, ALICE_HZ)
    print("alice hears bob, bob hears alice (purity):", heard)
    assert min(heard) > 0.8


@pytest.mark.timeout(60)
def test_with_stun_the_sdp_carries_the_nat_mapping(lab: NatLab) -> None:
    assert lab.kamailio is not None
    alice = lab.engine("alice", lab.agent, "0.0.0.0", ALICE_HZ)
    bob = lab.engine("bob", lab.public, SERVER, BOB_HZ)
    lab.register(bob)
    r = lab.register(alice, stun_servers=[STUN])
    assert r["stun_servers"] == [STUN]
    _call(alice, bob, f"sip:bob@{lab.kamailio.domain}")
    offered = invite_media(bob, "RX")
    print("bob got alice's SDP:", offered)
    assert offered[0].startswith(f"{NAT_PUBLIC}:")
    # PJSIP puts the STUN-learned address in SDP with the socket's own port: right while
    # the NAT keeps ports. Linux conntrack does, unless the far end's first RTP reaches the
    # NAT before the agent's (bob starts sending on answer): that packet takes the tuple and
    # the agent's RTP then leaves from another port. bob's latching covers that race; print
    # whether it was needed (it varies from run to run).
    switched = [x for x in bob.log_text().splitlines() if "Remote RTP address switched" in x]
    print("bob re-targeted its RTP:", switched or "no")
    heard = _heard(alice, BOB_HZ), _heard(bob, ALICE_HZ)
    print("alice hears bob, bob hears alice (purity):", heard)
    assert min(heard) > 0.8


@pytest.mark.timeout(120)
def test_ice_with_stun_behind_nat_carries_audio_and_ends_idle(lab: NatLab) -> None:
    kamailio = lab.kamailio
    assert kamailio is not None

    def attempt() -> None:
        alice = lab.engine("alice", lab.agent, "0.0.0.0", ALICE_HZ)
        bob = lab.engine("bob", lab.public, SERVER, BOB_HZ)
        lab.register(bob, ice=True)
        lab.register(alice, stun_servers=[STUN], ice=True)
        idle = [_idle_counts(p) for p in (alice, bob)]
        # inbound to the agent: Kamailio reaches alice at the Contact the NAT maps
        _call(alice, bob, f"sip:alice@{kamailio.domain}", bob_calls=True)
        invite = next(
            m
            for m in sip_messages(alice.log_text())
            if m.direction == "RX" and "INVITE" in m.first_line
        )
        answer = next(
            m
            for m in sip_messages(bob.log_text())
            if m.direction == "RX"
            and m.first_line.startswith("SIP/2.0 200")
            and "m=audio" in m.text
        )
        cands = [line for line in answer.text.splitlines() if line.startswith("a=candidate")]
        print("alice's answer, ICE candidates:", cands)
        assert any(f" {NAT_PUBLIC} " in c and "typ srflx" in c for c in cands), cands
        assert any(f" {AGENT} " in c and "typ host" in c for c in cands), cands
        assert invite.sdp_media() is not None
        for peer, role in ((bob, "Controlling"), (alice, "Controlled")):
            log = peer.log_text()
            assert f"ICE role: {role}, state: Negotiation Success" in log, log[-3000:]
        heard = _heard(alice, BOB_HZ), _heard(bob, ALICE_HZ)
        print("alice hears bob, bob hears alice (purity):", heard)
        assert min(heard) > 0.8
        _call(alice, bob, f"sip:bob@{kamailio.domain}")  # outbound: alice controls ICE
        assert alice.log_text().count("ICE role: Controlling, state: Negotiation Success") == 1
        for peer, before in zip((alice, bob), idle, strict=True):
            wait_until(
                _is_idle(peer, before),
                timeout=5,
                what=f"{peer.name}'s counts back to idle after two ICE calls: "
                f"{before} -> {_idle_counts(peer)}",
            )

    lab.with_ice_restarts(attempt)


@pytest.mark.timeout(60)
def test_symmetric_nat_defeats_stun_alone(
    tmp_path: Path, engine_factory: Callable[..., EnginePeer]
) -> None:
    """`MASQUERADE --random`: every new destination gets a random NAT port, so the mapping
    STUN reports (for the STUN server) is not the one RTP to the far end uses."""
    with nat_lab(tmp_path, engine_factory, symmetric=True) as lab:
        assert lab.kamailio is not None
        alice = lab.engine("alice", lab.agent, "0.0.0.0", ALICE_HZ)
        lab.register(alice, stun_servers=[STUN], ice=False)
        sipp = SippUas(lab, BOB_HZ)  # sends where the SDP says, never latches
        offered = _call_hearing_nothing(alice, sipp, "symmetric NAT, STUN only")
        assert offered[0].startswith(f"{NAT_PUBLIC}:")
        # ICE without TURN behind a symmetric NAT is not guaranteed (in loaded runs it carried
        # audio both ways in 2 of 5); with the TURN relay as a candidate it is the test below.


@pytest.mark.timeout(120)
def test_symmetric_nat_with_turn_relays_the_call(
    tmp_path: Path, engine_factory: Callable[..., EnginePeer]
) -> None:
    """ICE with coturn's relay candidate: the path a symmetric NAT cannot break."""
    with nat_lab(tmp_path, engine_factory, symmetric=True) as lab:
        kamailio, turn_log = lab.kamailio, lab.turn_log
        assert kamailio is not None and turn_log is not None

        def attempt() -> None:
            seen = len(turn_log.read_text(errors="replace"))  # this attempt's allocations
            alice = lab.engine("alice", lab.agent, "0.0.0.0", ALICE_HZ)
            bob = lab.engine("bob", lab.public, SERVER, BOB_HZ)
            lab.register(bob, ice=True)
            r = lab.register(
                alice,
                stun_servers=[STUN],
                ice=True,
                turn_server=f"{SERVER}:3478",
                turn_user=TURN_USER,
                turn_password=TURN_PASSWORD,
            )
            assert r["turn_server"] == f"{SERVER}:3478"
            _call(alice, bob, f"sip:bob@{kamailio.domain}")
            offer = next(
                m
                for m in sip_messages(alice.log_text())
                if m.direction == "TX" and m.first_line.startswith("INVITE") and "m=audio" in m.text
            )
            relay = [c for c in offer.text.splitlines() if "typ relay" in c]
            print("alice's relay candidates:", relay)
            assert any(f" {SERVER} " in c for c in relay), offer.text
            assert "Negotiation Success" in alice.log_text()
            heard = _heard(alice, BOB_HZ), _heard(bob, ALICE_HZ)
            print("symmetric NAT with TURN: alice hears bob, bob hears alice:", heard)
            assert min(heard) > 0.8
            assert "ALLOCATE processed, success" in turn_log.read_text(errors="replace")[seen:]

        lab.with_ice_restarts(attempt)


def test_turn_without_ice_is_refused_in_words(
    tmp_path: Path, engine_factory: Callable[..., EnginePeer]
) -> None:
    peer = engine_factory("alice", extra=["--bind", "127.0.0.1"])
    r = peer.send("register", user="alice", domain="127.0.0.1", registrar="", turn_server="x")
    reply = peer.reply(r)
    assert not reply.ok and reply.error_code == "bad_args" and "ICE" in reply.error_message
