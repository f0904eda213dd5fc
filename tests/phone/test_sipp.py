"""SIPp calling the engine and being called by it, with RTP from a raw u-law file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.phone.audio import read_samples, tone_report, write_tone
from tests.phone.engine_peer import EnginePeer
from tests.phone.sipp import Sipp, uac_scenario, uas_scenario, write_ulaw_tone

pytestmark = pytest.mark.phone


@pytest.fixture
def sipp_factory(tmp_path: Path) -> Iterator[Callable[[str, str], Sipp]]:
    """SIPp processes, each killed at the end if still running."""
    started: list[Sipp] = []

    def make(scenario: str, name: str = "sipp") -> Sipp:
        s = Sipp(tmp_path, scenario, name)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def _local_account(e: EnginePeer, auto_answer: bool = False) -> None:
    # No registrar: calls are addressed to the engine's own port (as a PBX trunk would).
    e.request("register", user="agent", domain="127.0.0.1", registrar="", auto_answer=auto_answer)


def test_engine_calls_sipp_and_hears_its_ulaw_stream(
    engine_factory: Callable[..., EnginePeer], sipp_factory: Callable[..., Sipp], tmp_path: Path
) -> None:
    tone = write_ulaw_tone(tmp_path / "tone.ul", 1000, 3)
    sipp = sipp_factory(uas_scenario(tone))
    sipp.start()
    e = engine_factory("agent")
    _local_account(e)
    call = e.request("dial", to=f"sip:service@127.0.0.1:{sipp.port}")["call"]
    e.wait_call_state(call, "confirmed")
    e.wait_event("quality", lambda q: q["call"] == call and q.get("rx_packets", 0) > 100)
    e.request("hangup", call=call)
    e.wait_call_state(call, "disconnected")
    assert sipp.wait() == 0, sipp.output()
    samples, rate = read_samples(e.speaker)
    report = tone_report(samples, rate, 1000)
    print("engine hears SIPp:", report)
    assert report["purity"] > 0.9 and report["rms"] > 0.05


def test_hold_resume_sdp_checked_by_sipp(
    engine_factory: Callable[..., EnginePeer], sipp_factory: Callable[..., Sipp], tmp_path: Path
) -> None:
    tone = write_ulaw_tone(tmp_path / "tone.ul", 1000, 1)
    sipp = sipp_factory(uas_scenario(tone, hold_checks=True))
    sipp.start()
    e = engine_factory("agent")
    _local_account(e)
    call = e.request("dial", to=f"sip:service@127.0.0.1:{sipp.port}")["call"]
    e.wait_call_state(call, "confirmed")
    e.wait_event("media_state", lambda d: d["status"] == "active")
    e.request("hold", call=call)
    held = e.wait_event("media_state", lambda d: d["status"] == "local_hold")
    assert held["direction"] == "sendonly"
    assert e.request("status")["capturing"] is False  # no call needs the mic while held
    e.request("resume", call=call)
    n = len(e.events("media_state"))
    e.wait_event("media_state", lambda d: d["status"] == "active", after=n - 1)
    e.request("hangup", call=call)
    e.wait_call_state(call, "disconnected")
    assert sipp.wait() == 0, sipp.output()


def test_sipp_calls_the_engine_which_answers_and_is_echoed(
    engine_factory: Callable[..., EnginePeer], sipp_factory: Callable[..., Sipp], tmp_path: Path
) -> None:
    e = engine_factory("agent", mic=write_tone(tmp_path / "mic.wav", 800, 2))
    _local_account(e)
    sipp = sipp_factory(uac_scenario(talk_ms=3000))
    sipp.start(f"127.0.0.1:{e.sip_port}", extra=["-rtp_echo"])
    inc = e.wait_event("incoming_call")
    assert inc["from_name"] == "Queue Support" and inc["auto_answer_after"] is None
    assert inc["will_auto_answer"] is False
    e.request("answer", call=inc["call"])
    e.wait_call_state(inc["call"], "disconnected", timeout=15)
    assert sipp.wait() == 0, sipp.output()
    samples, rate = read_samples(e.speaker)
    report = tone_report(samples, rate, 800)
    print("engine hears its own tone echoed by SIPp:", report)
    assert report["purity"] > 0.9 and report["rms"] > 0.05


@pytest.mark.parametrize(
    "header",
    [
        "Call-Info: <sip:127.0.0.1>;answer-after=0",
        "Alert-Info: <http://127.0.0.1/>;info=alert-autoanswer",
    ],
)
def test_auto_answer_when_the_acd_asks(
    engine_factory: Callable[..., EnginePeer], sipp_factory: Callable[..., Sipp], header: str
) -> None:
    e = engine_factory("agent")
    _local_account(e, auto_answer=True)
    sipp = sipp_factory(uac_scenario([header], talk_ms=500))
    sipp.start(f"127.0.0.1:{e.sip_port}")
    inc = e.wait_event("incoming_call")
    assert inc["auto_answer_after"] == 0 and inc["will_auto_answer"] is True
    e.wait_call_state(inc["call"], "confirmed")
    e.wait_call_state(inc["call"], "disconnected")
    assert sipp.wait() == 0, sipp.output()


def test_no_auto_answer_unless_the_account_allows_it(
    engine_factory: Callable[..., EnginePeer], sipp_factory: Callable[..., Sipp]
) -> None:
    e = engine_factory("agent")
    _local_account(e, auto_answer=False)
    sipp = sipp_factory(uac_scenario(["Call-Info: <sip:127.0.0.1>;answer-after=0"]))
    sipp.start(f"127.0.0.1:{e.sip_port}")
    inc = e.wait_event("incoming_call")
    assert inc["auto_answer_after"] == 0 and inc["will_auto_answer"] is False
    assert e.request("status")["ringing"] is True
    e.request("decline", call=inc["call"], code=486)
    e.wait_call_state(inc["call"], "disconnected")
    assert e.request("status")["ringing"] is False
    assert sipp.wait() != 0  # the UAC scenario expected 200 and got 486
