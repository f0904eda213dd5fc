"""The desktop backends on a PulseAudio headset: sound goes mic -> far end -> speaker.

Each test runs with both: `pulse` (the Linux default: QMediaDevices for the devices,
libpulse streams for the call, moved by the native port or, as a fallback, the Python one)
and `qt` (QtMultimedia's own streams, the default
elsewhere)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.phone.audio import read_samples, tone_report, write_tone
from tests.phone.engine_peer import EnginePeer
from tests.phone.pulse import Pulse, stop_recorder
from tests.phone.sipp import Sipp, uac_scenario
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone


@pytest.fixture
def sipp_echo(tmp_path: Path) -> Iterator[Callable[[int], Sipp]]:
    started: list[Sipp] = []

    def make(talk_ms: int) -> Sipp:
        s = Sipp(tmp_path, uac_scenario(talk_ms=talk_ms), "sipp-echo")
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(params=["pulse", "pulse-python-port", "qt"])
def backend(request: pytest.FixtureRequest) -> str:
    """`pulse` with the native port (the default), and with the Python port it falls back
    to when the native library is not there."""
    return str(request.param)


def _headset_engine(
    engine_factory: Callable[..., EnginePeer], pulse: Pulse, backend: str
) -> EnginePeer:
    env = dict(pulse.env, QT_LOGGING_RULES="qt.multimedia.symbolsresolver=false")
    python_port = backend.endswith("-python-port")
    if python_port:
        env["SWITCHBOARD_NATIVE_AUDIO"] = "0"
    backend = backend.removesuffix("-python-port")
    e = engine_factory("agent", extra=["--backend", backend], env=env)
    assert e.ready["native_audio"] is not python_port
    e.request("register", user="agent", domain="127.0.0.1", registrar="")
    return e


def test_devices_are_listed_by_name_and_chosen_by_name(
    pulse: Pulse, backend: str, engine_factory: Callable[..., EnginePeer]
) -> None:
    e = _headset_engine(engine_factory, pulse, backend)
    devs = e.request("list_devices")
    assert "Headset-Microphone" in [d["name"] for d in devs["capture"]]
    assert "Headset-Earpiece" in [d["name"] for d in devs["playback"]]
    chosen = e.request(
        "set_devices",
        capture="Headset-Microphone",
        playback="Headset-Earpiece",
        ringer="No Such Speaker",
    )
    assert chosen == {
        "capture": "Headset-Microphone",
        "playback": "Headset-Earpiece",
        "ringer": "Headset-Earpiece",
    }  # unknown name: the default, not an error


def test_a_tone_from_the_headset_mic_comes_back_on_the_earpiece(
    pulse: Pulse,
    backend: str,
    engine_factory: Callable[..., EnginePeer],
    sipp_echo: Callable[[int], Sipp],
    tmp_path: Path,
) -> None:
    e = _headset_engine(engine_factory, pulse, backend)
    e.request(
        "set_devices", capture="Headset-Microphone", playback="Headset-Earpiece", ringer="Speakers"
    )
    assert pulse.source_outputs() == []  # no call: the engine holds no capture stream
    feeder = pulse.play(write_tone(tmp_path / "mic.wav", 800, 8))
    heard = tmp_path / "earpiece.wav"
    recorder = pulse.record(heard)
    try:
        sipp = sipp_echo(4000)
        sipp.start(f"127.0.0.1:{e.sip_port}", extra=["-rtp_echo"])
        inc = e.wait_event("incoming_call")
        e.request("answer", call=inc["call"])
        e.wait_call_state(inc["call"], "confirmed")
        wait_until(lambda: len(pulse.source_outputs()) == 1, what="the engine's mic stream")
        e.wait_call_state(inc["call"], "disconnected", timeout=15)
        assert sipp.wait() == 0, sipp.output()
        wait_until(lambda: pulse.source_outputs() == [], what="the mic stream to close")
    finally:
        stop_recorder(recorder)
        stop_recorder(feeder)
    samples, rate = read_samples(heard)
    report = tone_report(samples, rate, 800)
    print(
        "earpiece hears the mic tone echoed by SIPp:",
        report,
        [q.get("audio") for q in e.events("quality")][-1:],
    )
    assert report["purity"] > 0.8 and report["rms"] > 0.05


def test_unplugging_the_headset_mid_call_falls_back_and_says_so(
    pulse: Pulse,
    backend: str,
    engine_factory: Callable[..., EnginePeer],
    sipp_echo: Callable[[int], Sipp],
    tmp_path: Path,
) -> None:
    e = _headset_engine(engine_factory, pulse, backend)
    e.request(
        "set_devices", capture="Headset-Microphone", playback="Headset-Earpiece", ringer="Speakers"
    )
    sipp = sipp_echo(5000)
    sipp.start(f"127.0.0.1:{e.sip_port}", extra=["-rtp_echo"])
    inc = e.wait_event("incoming_call")
    e.request("answer", call=inc["call"])
    e.wait_call_state(inc["call"], "confirmed")
    module = next(
        line.split("\t")[0]
        for line in pulse.pactl("list", "short", "modules").splitlines()
        if "sink_name=headset_ear" in line
    )
    pulse.pactl("unload-module", module)
    gone = e.wait_event(
        "devices", lambda d: "Headset-Earpiece" not in [x["name"] for x in d["playback"]]
    )
    assert gone["playback"]
    err = e.wait_event("error", lambda d: "Headset-Earpiece" in d["message"])
    assert "system default" in err["message"]
    pulse.pactl(
        "load-module",
        "module-null-sink",
        "sink_name=headset_ear",
        "sink_properties=device.description=Headset-Earpiece",
    )
    e.wait_event("devices", lambda d: "Headset-Earpiece" in [x["name"] for x in d["playback"]])
    e.wait_call_state(inc["call"], "disconnected", timeout=15)
    assert sipp.wait() == 0, sipp.output()  # the call survived the unplug
    wait_until(lambda: pulse.source_outputs() == [], what="the mic stream to close")


def test_an_incoming_call_rings_on_the_ringer_device_until_answered(
    pulse: Pulse,
    backend: str,
    engine_factory: Callable[..., EnginePeer],
    sipp_echo: Callable[[int], Sipp],
    tmp_path: Path,
) -> None:
    e = _headset_engine(engine_factory, pulse, backend)
    chosen = e.request(
        "set_devices", capture="Headset-Microphone", playback="Headset-Earpiece", ringer="Speakers"
    )
    assert chosen["ringer"] == "Speakers"
    rung = tmp_path / "speakers.wav"
    recorder = pulse.record(rung, device="speakers.monitor")
    try:
        sipp = sipp_echo(500)
        sipp.start(f"127.0.0.1:{e.sip_port}")
        inc = e.wait_event("incoming_call")
        assert e.request("status")["ringing"] is True
        wait_until(
            lambda: rung.exists() and rung.stat().st_size > 44 + 32000 * 1.2,
            what="1.2 s recorded from the speakers",
        )
        e.request("answer", call=inc["call"])
        assert e.request("status")["ringing"] is False
        e.wait_call_state(inc["call"], "disconnected", timeout=15)
        assert sipp.wait() == 0, sipp.output()
    finally:
        stop_recorder(recorder)
    samples, rate = read_samples(rung)
    low, high = tone_report(samples, rate, 440), tone_report(samples, rate, 480)
    print("speakers while ringing:", low, high)
    assert low["rms"] > 0.05 and low["purity"] > 0.3 and high["purity"] > 0.3
