"""Two engines calling each other through Kamailio: sound, hold, mute, DTMF, hang-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.phone.audio import read_samples, tone_report, write_tone
from tests.phone.conftest import USERS
from tests.phone.engine_peer import EnginePeer
from tests.phone.peers import Kamailio
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone


def _registered(e: EnginePeer, user: str, k: Kamailio) -> None:
    e.request("register", user=user, domain=k.domain, password=USERS[user])
    st = e.wait_event("reg_state", lambda d: d["state"] in ("Registered", "Failed"))
    assert st["state"] == "Registered", st


def _connected_pair(
    k: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> tuple[EnginePeer, EnginePeer, str, str]:
    alice = engine_factory("alice", mic=write_tone(tmp_path / "a.wav", 1000, 2.0))
    bob = engine_factory("bob", mic=write_tone(tmp_path / "b.wav", 700, 2.0))
    _registered(alice, "alice", k)
    _registered(bob, "bob", k)
    a_call = alice.request("dial", to="bob")["call"]
    inc = bob.wait_event("incoming_call")
    assert "alice" in inc["from"]
    alice.wait_event("call_state", lambda d: d["call"] == a_call and d["state"] == "early")
    bob.request("answer", call=inc["call"])
    alice.wait_call_state(a_call, "confirmed")
    bob.wait_call_state(inc["call"], "confirmed")
    for e in (alice, bob):
        e.wait_event("media_state", lambda d: d["status"] == "active")
    return alice, bob, a_call, inc["call"]


def _rx_packets_over(e: EnginePeer, call: str, n: int, after: int = 0) -> bool:
    return any(
        q["call"] == call and q.get("rx_packets", 0) > n for q in e.events("quality")[after:]
    )


def test_a_tone_travels_both_ways_and_the_mic_closes_after_hangup(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    alice, bob, a_call, b_call = _connected_pair(kamailio, engine_factory, tmp_path)
    assert bob.request("status")["capturing"] is True
    wait_until(lambda: _rx_packets_over(bob, b_call, 120), timeout=10, what="2.4 s of RTP")
    quality = bob.events("quality")[-1]
    alice.request("hangup", call=a_call)
    alice.wait_call_state(a_call, "disconnected")
    bob.wait_call_state(b_call, "disconnected")
    wait_until(lambda: bob.request("status")["capturing"] is False, what="bob's mic closed")
    assert alice.request("status")["capturing"] is False

    heard_by_bob, rate = read_samples(bob.speaker)
    at_bob = tone_report(heard_by_bob, rate, 1000)
    heard_by_alice, rate = read_samples(alice.speaker)
    at_alice = tone_report(heard_by_alice, rate, 700)
    print(f"bob hears 1000 Hz: {at_bob}; alice hears 700 Hz: {at_alice}; quality {quality}")
    assert at_bob["rms"] > 0.1 and at_bob["purity"] > 0.8 and at_bob["off_freq_purity"] < 0.05
    assert at_alice["rms"] > 0.1 and at_alice["purity"] > 0.8
    assert quality["loss_pct"] == 0 and quality["mos"] > 4.0
    jb = quality["jbuf"]  # a clean loopback call: frames were delivered, none lost
    assert jb["min_ms"] > 0 and jb["max_ms"] >= jb["min_ms"] and jb["lost"] == 0, jb


def test_hold_and_resume_change_the_sdp_direction_at_the_far_end(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    alice, bob, a_call, b_call = _connected_pair(kamailio, engine_factory, tmp_path)
    n = len(bob.events("media_state"))
    alice.request("hold", call=a_call)
    held = bob.wait_event("media_state", lambda d: d["call"] == b_call, after=n)
    assert held["remote_direction"] == "sendonly"
    assert held["status"] == "remote_hold" and held["direction"] == "recvonly"
    assert held["capturing"] is False  # held by the far end: bob's mic is not needed
    mine = alice.wait_event("media_state", lambda d: d["status"] == "local_hold")
    assert mine["direction"] == "sendonly"

    n = len(bob.events("media_state"))
    alice.request("resume", call=a_call)
    resumed = bob.wait_event("media_state", lambda d: d["call"] == b_call, after=n)
    assert resumed["remote_direction"] == "sendrecv"
    assert resumed["status"] == "active" and resumed["direction"] == "sendrecv"


@pytest.mark.parametrize("method", ["rfc4733", "info"])
def test_dtmf_digits_arrive_at_the_far_end(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path, method: str
) -> None:
    alice, bob, a_call, b_call = _connected_pair(kamailio, engine_factory, tmp_path)
    alice.request("dtmf", call=a_call, digits="1#9", method=method)
    alice.request("dtmf", call=a_call, digits="*05", method=method)  # while the first go out
    wait_until(lambda: len(bob.events("dtmf")) >= 6, timeout=10, what="six digits at bob")
    got = bob.events("dtmf")
    assert {d["call"] for d in got} == {b_call}
    assert "".join(d["digit"] for d in got) == "1#9*05"
    assert {d["method"] for d in got} == {method}


def _speaker_bytes(e: EnginePeer) -> int:
    return e.speaker.stat().st_size if e.speaker.exists() else 0


def _tail_rms(e: EnginePeer, seconds: float) -> float:
    samples, rate = read_samples(e.speaker)
    tail = samples[-int(seconds * rate) :]
    return (sum((x / 32768) ** 2 for x in tail) / max(1, len(tail))) ** 0.5


def test_mute_sends_silence_and_unmute_sends_the_mic_again(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    alice, bob, a_call, _ = _connected_pair(kamailio, engine_factory, tmp_path)
    assert alice.request("mute", call=a_call)["muted"] is True
    grown = _speaker_bytes(bob) + 32000  # one more second heard by bob
    wait_until(lambda: _speaker_bytes(bob) > grown, what="a second of audio at bob")
    muted_level = _tail_rms(bob, 0.5)
    alice.request("unmute", call=a_call)
    grown = _speaker_bytes(bob) + 32000
    wait_until(lambda: _speaker_bytes(bob) > grown, what="a second of audio at bob")
    unmuted_level = _tail_rms(bob, 0.5)
    print(f"bob hears {muted_level:.4f} rms while alice is muted, {unmuted_level:.3f} after")
    assert muted_level < 0.005 < 0.1 < unmuted_level


def test_blind_transfer_moves_the_caller_to_a_third_agent(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    alice, bob, a_call, b_call = _connected_pair(kamailio, engine_factory, tmp_path)
    carol = engine_factory("carol")
    _registered(carol, "carol", kamailio)
    bob.request("transfer", call=b_call, to="carol")
    req = alice.wait_event("transfer_request")
    assert req["call"] == a_call and "carol" in req["to"]
    inc = carol.wait_event("incoming_call")
    assert "alice" in inc["from"]
    carol.request("answer", call=inc["call"])
    alice.wait_call_state(req["new_call"], "confirmed")
    final = bob.wait_event("transfer_state", lambda d: d["final"])
    assert final["code"] == 200
    bob.wait_call_state(b_call, "disconnected")
    alice.wait_call_state(a_call, "disconnected")
    alice.request("hangup", call=req["new_call"])
    carol.wait_call_state(inc["call"], "disconnected")


def test_ringback_plays_while_the_far_end_rings_and_stops_on_answer(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    alice = engine_factory("alice")
    bob = engine_factory("bob", mic=write_tone(tmp_path / "b.wav", 700, 2))
    _registered(alice, "alice", kamailio)
    _registered(bob, "bob", kamailio)
    a_call = alice.request("dial", to="bob")["call"]
    inc = bob.wait_event("incoming_call")
    alice.wait_event("call_state", lambda d: d["call"] == a_call and d["code"] == 180)
    wait_until(lambda: alice.request("status")["ringback"], what="ringback at alice")
    wait_until(
        lambda: alice.speaker.exists() and alice.speaker.stat().st_size > 44 + 48000,
        what="1.5 s of ringback in alice's headset",
    )
    rung = tone_report(read_samples(alice.speaker)[0], 16000, 440)
    bob.request("answer", call=inc["call"])
    alice.wait_call_state(a_call, "confirmed")
    wait_until(lambda: not alice.request("status")["ringback"], what="ringback to stop")
    print("alice hears while bob's phone rings:", rung)
    assert rung["rms"] > 0.05 and rung["purity"] > 0.3  # 440 Hz is half of 440+480


def test_a_second_call_while_talking_beeps_in_the_headset_instead_of_ringing(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    alice, bob, a_call, b_call = _connected_pair(kamailio, engine_factory, tmp_path)
    carol = engine_factory("carol")
    _registered(carol, "carol", kamailio)
    c_call = carol.request("dial", to="bob")["call"]
    second = bob.wait_event("incoming_call", lambda d: d["call"] != b_call)
    status = wait_until(
        lambda: (s := bob.request("status"))["tone"] == "waiting" and s,
        what="call-waiting tone at bob",
    )
    assert status["ringing"] is False  # the speakers stay quiet during the conversation
    bob.request("decline", call=second["call"])
    carol.wait_call_state(c_call, "disconnected")
    wait_until(lambda: bob.request("status")["tone"] is None, what="the beep to stop")
    bob.request("hangup", call=b_call)
    alice.wait_call_state(a_call, "disconnected")
    wait_until(lambda: bob.request("status")["capturing"] is False, what="bob's mic closed")
