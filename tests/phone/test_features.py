"""Recording, three-way conference, attended transfer and SRTP between real engines."""

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


def _registered(e: EnginePeer, user: str, k: Kamailio, **extra: object) -> None:
    e.request("register", user=user, domain=k.domain, password=USERS[user], **extra)
    st = e.wait_event("reg_state", lambda d: d["state"] in ("Registered", "Failed"))
    assert st["state"] == "Registered", st


def _call(caller: EnginePeer, callee: EnginePeer, to: str) -> tuple[str, str]:
    n = len(callee.events("incoming_call"))
    key = caller.request("dial", to=to)["call"]
    inc = callee.wait_event("incoming_call", after=n)
    callee.request("answer", call=inc["call"])
    caller.wait_call_state(key, "confirmed")
    callee.wait_call_state(inc["call"], "confirmed")
    for e, k in ((caller, key), (callee, inc["call"])):
        e.wait_event("media_state", lambda d, k=k: d["call"] == k and d["status"] == "active")
    return key, inc["call"]


def _heard_after(e: EnginePeer, start_bytes: int, freq: float) -> dict[str, float]:
    samples, rate = read_samples(e.speaker)
    tail = samples[max(0, (start_bytes - 44) // 2) :]
    return tone_report(tail, rate, freq)


def _wait_audio(e: EnginePeer, seconds: float) -> int:
    start = e.speaker.stat().st_size
    wait_until(
        lambda: e.speaker.stat().st_size > start + int(seconds * 32000),
        what=f"{seconds}s more audio at {e.name}",
    )
    return start


def test_a_recording_holds_both_sides_of_the_call(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    alice = engine_factory("alice", mic=write_tone(tmp_path / "a.wav", 1000, 2))
    bob = engine_factory("bob", mic=write_tone(tmp_path / "b.wav", 600, 2))
    _registered(alice, "alice", kamailio)
    _registered(bob, "bob", kamailio)
    a_call, _ = _call(alice, bob, "bob")
    rec = tmp_path / "call.wav"
    alice.request("record_start", call=a_call, path=str(rec))
    _wait_audio(alice, 1.5)
    assert alice.request("record_stop", call=a_call)["path"] == str(rec)
    samples, rate = read_samples(rec)
    assert len(samples) > rate  # more than a second recorded
    ours, theirs = tone_report(samples, rate, 1000), tone_report(samples, rate, 600)
    print("recording:", ours, theirs)
    assert ours["purity"] > 0.2 and theirs["purity"] > 0.2  # both tones mixed in the file
    assert ours["purity"] + theirs["purity"] > 0.9


def test_three_way_conference_lets_both_far_ends_hear_each_other(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    alice = engine_factory("alice")  # the agent: silent, hosts the conference
    bob = engine_factory("bob", mic=write_tone(tmp_path / "b.wav", 600, 2))
    carol = engine_factory("carol", mic=write_tone(tmp_path / "c.wav", 1300, 2))
    for e in (alice, bob, carol):
        _registered(e, e.name, kamailio)
    to_bob, _ = _call(alice, bob, "bob")
    alice.request("hold", call=to_bob)  # call waiting: the first caller on hold
    alice.wait_event("media_state", lambda d: d["call"] == to_bob and d["status"] == "local_hold")
    to_carol, _ = _call(alice, carol, "carol")
    alice.request("resume", call=to_bob)
    n = len(alice.events("media_state"))
    alice.wait_event(
        "media_state", lambda d: d["call"] == to_bob and d["status"] == "active", after=n - 1
    )
    start = _wait_audio(bob, 0.3)
    before = _heard_after(bob, start, 1300)
    alice.request("conference", calls=[to_bob, to_carol])
    start = _wait_audio(bob, 0.2)
    _wait_audio(bob, 1.5)
    after = _heard_after(bob, start, 1300)
    print(f"bob hears carol's 1300 Hz before {before} / after conference {after}")
    assert before["rms"] < 0.01  # alice is silent and carol not yet joined
    assert after["purity"] > 0.8 and after["rms"] > 0.1


def test_attended_transfer_joins_the_two_far_ends(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    alice = engine_factory("alice", mic=write_tone(tmp_path / "a.wav", 900, 2))
    bob = engine_factory("bob")  # the agent who transfers
    carol = engine_factory("carol", mic=write_tone(tmp_path / "c.wav", 1300, 2))
    for e in (alice, bob, carol):
        _registered(e, e.name, kamailio)
    _, b_from_alice = _call(alice, bob, "bob")
    bob.request("hold", call=b_from_alice)
    b_to_carol, c_call = _call(bob, carol, "carol")
    bob.request("transfer", call=b_from_alice, replaces=b_to_carol)
    req = alice.wait_event("transfer_request")
    alice.wait_call_state(req["new_call"], "confirmed")
    final = bob.wait_event("transfer_state", lambda d: d["final"])
    assert final["code"] == 200
    replaced = carol.wait_event("call_replaced")  # INVITE with Replaces: no incoming_call
    assert replaced["call"] == c_call
    carol.wait_call_state(replaced["new_call"], "confirmed")
    carol.wait_call_state(c_call, "disconnected")
    bob.wait_call_state(b_from_alice, "disconnected")
    bob.wait_call_state(b_to_carol, "disconnected")
    assert "alice" in carol.wait_call_state(replaced["new_call"], "confirmed")["remote"]
    start = _wait_audio(carol, 0.2)
    _wait_audio(carol, 1.2)
    heard = _heard_after(carol, start, 900)
    assert heard["purity"] > 0.8, heard


@pytest.mark.parametrize(
    ("a", "b", "works"),
    [
        ("mandatory", "mandatory", True),
        ("mandatory", "off", False),
    ],
)
def test_srtp_is_negotiated_or_the_call_is_refused(
    kamailio: Kamailio,
    engine_factory: Callable[..., EnginePeer],
    tmp_path: Path,
    a: str,
    b: str,
    works: bool,
) -> None:
    alice = engine_factory("alice", mic=write_tone(tmp_path / "a.wav", 1000, 2))
    bob = engine_factory("bob")
    _registered(alice, "alice", kamailio, srtp=a)
    _registered(bob, "bob", kamailio, srtp=b)
    key = alice.request("dial", to="bob")["call"]
    if not works:
        end = alice.wait_call_state(key, "disconnected")
        assert end["code"] in (488, 415, 406), end
        return
    inc = bob.wait_event("incoming_call")
    bob.request("answer", call=inc["call"])
    alice.wait_call_state(key, "confirmed")
    start = _wait_audio(bob, 0.2)
    _wait_audio(bob, 1.2)
    assert _heard_after(bob, start, 1000)["purity"] > 0.8  # both mandatory: it is SRTP
    alice.request("hangup", call=key)
    alice.wait_call_state(key, "disconnected")
    # PJSIP's call dump on hang-up names the media transport's crypto state.
    wait_until(lambda: "SRTP status: Active" in alice.log_text(), what="SRTP active in the dump")
