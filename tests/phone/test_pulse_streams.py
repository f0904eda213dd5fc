"""PulseAudio's own streams (the Linux headset backend) against a real PulseAudio daemon:
refusals in words, and a sound-server restart mid-call is said while the call stays up."""

from __future__ import annotations

import array
import ctypes
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from softphone.pulse_client import (
    STALLED_TICKS,
    PulseContext,
    PulseError,
    PulseFaultError,
    PulseStream,
)
from softphone.ringbuffer import RingBuffer
from tests.phone.engine_peer import EnginePeer
from tests.phone.pulse import Pulse
from tests.phone.sipp import Sipp, uac_scenario
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone


def _use(monkeypatch: pytest.MonkeyPatch, pulse: Pulse) -> None:
    for key in ("PULSE_SERVER", "PULSE_RUNTIME_PATH", "PULSE_STATE_PATH", "HOME"):
        monkeypatch.setenv(key, pulse.env[key])


def test_streams_move_audio_both_ways_on_the_callers_clock(
    pulse: Pulse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the media clock does each tick, done by the test: push a tone into the virtual
    microphone's feed, pull what the microphone heard; nothing here waits inside libpulse."""
    _use(monkeypatch, pulse)
    server = PulseContext()
    out = PulseStream(server, False, 16000, "mic_feed", 20)  # what plays here is the mic's input
    mic = PulseStream(server, True, 16000, "headset_mic", 10)
    period = array.array(  # 10 ms of 800 Hz at 16 kHz: eight whole periods, loops cleanly
        "h", (int(9000 * math.sin(2 * math.pi * 800 * i / 16000)) for i in range(160))
    )
    feed = RingBuffer(640, start_ms=0, target_ms=200)
    heard = RingBuffer(640, capacity_ms=2000)
    scratch = (ctypes.c_char * 2560)()
    got = (ctypes.c_char * 640)()
    loud = [0]

    def tick() -> bool:
        while feed.fill < 1280:  # keep 40 ms of tone ready for the speaker's stream
            feed.write(period.tobytes())
        out.push_from(feed, ctypes.addressof(scratch), len(scratch))
        mic.pull_into(heard)
        n = heard.drain_into(ctypes.addressof(got), 640)
        while n:
            loud[0] = max(loud[0], max(map(abs, array.array("h", got.raw[:n]))))
            n = heard.drain_into(ctypes.addressof(got), 640)
        return loud[0] > 1000

    try:  # a null sink takes up to 2 s to start taking audio
        wait_until(tick, timeout=10, interval=0.01, what="the microphone to hear the tone")
        assert not out.broken and not mic.broken
    finally:
        out.close()
        mic.close()
        server.close()


def test_a_speaker_that_takes_nothing_holds_one_frame_not_a_backlog(
    pulse: Pulse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A suspended sink (a device that stalls, or has not started) gives the stream no room:
    the ring then keeps only its freshest frame instead of queueing speech that would have
    to be cut out later; the server never queues more than its buffer plus one frame."""
    _use(monkeypatch, pulse)
    pulse.pactl("suspend-sink", "headset_ear", "1")
    server = PulseContext()
    out = PulseStream(server, False, 16000, "headset_ear", 40, prebuf_ms=25)
    ring = RingBuffer(640, start_ms=20, target_ms=5)
    scratch = (ctypes.c_char * 2560)()
    try:
        for _ in range(STALLED_TICKS + 20):  # the media clock's pushes, one frame each
            ring.write(bytes(range(256)) * 2 + bytes(128))
            out.push_from(ring, ctypes.addressof(scratch), len(scratch), over=640)
        assert ring.fill <= 640, ring.counters()
        assert [t[4] for t in ring.trims][-1] == "stall"
        assert not out.broken
    finally:
        out.close()
        server.close()
        pulse.pactl("suspend-sink", "headset_ear", "0")


def test_a_fault_on_the_clock_stops_the_stream_once_in_words(
    pulse: Pulse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the media clock calls must not raise on every tick (pjsua2 would print each
    traceback and go on): the first fault is said once, then the stream stays quiet."""
    _use(monkeypatch, pulse)
    server = PulseContext()
    mic = PulseStream(server, True, 16000, "headset_mic", 10)
    calls = []

    class BrokenRing(RingBuffer):
        def write_from(self, address: int, n: int) -> None:
            calls.append(n)
            raise MemoryError("no room")

    ring = BrokenRing(640)
    try:
        with pytest.raises(PulseFaultError) as err:  # a PulseError the backend does not reopen
            wait_until(lambda: mic.pull_into(ring) or False, timeout=5, interval=0.01)
        assert "the microphone “headset_mic” stopped: internal error (no room)" in str(err.value)
        assert mic.broken and len(calls) == 1
        mic.pull_into(ring)  # the next ticks: nothing raised, nothing touched
        assert len(calls) == 1
    finally:
        mic.close()
        server.close()


def test_a_missing_device_is_refused_in_words(
    pulse: Pulse, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, pulse)
    server = PulseContext()
    try:
        with pytest.raises(PulseError) as err:
            PulseStream(server, True, 16000, "no_such_headset", 10)
        assert "cannot open the microphone “no_such_headset”" in str(err.value)
        assert "entity" in str(err.value).lower()  # PulseAudio's "No such entity"
        assert server.ready  # one refused stream does not break the connection
    finally:
        server.close()


def test_no_sound_server_is_refused_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path / 'nobody-listens'}")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PULSE_RUNTIME_PATH", str(tmp_path / "run"))
    with pytest.raises(PulseError) as err:
        PulseContext()
    assert "refused" in str(err.value).lower() or "connection" in str(err.value).lower()


def test_a_sound_server_restart_mid_call_is_said_and_the_call_stays_up(
    pulse: Pulse, engine_factory: Callable[..., EnginePeer], tmp_path: Path
) -> None:
    """PipeWire or PulseAudio restarting (an update, `pulseaudio -k`) kills every stream: the
    agent reads why, the call goes on, and choosing the headset again brings the audio back."""
    env = dict(pulse.env, QT_LOGGING_RULES="qt.multimedia.symbolsresolver=false")
    e = engine_factory("agent", extra=["--backend", "pulse"], env=env)
    e.request("register", user="agent", domain="127.0.0.1", registrar="")
    devices = {
        "capture": "Headset-Microphone",
        "playback": "Headset-Earpiece",
        "ringer": "Speakers",
    }
    e.request("set_devices", **devices)
    sipp = Sipp(tmp_path, uac_scenario(talk_ms=8000), "sipp-echo")
    try:
        sipp.start(f"127.0.0.1:{e.sip_port}", extra=["-rtp_echo"])
        inc = e.wait_event("incoming_call")
        e.request("answer", call=inc["call"])
        e.wait_call_state(inc["call"], "confirmed")
        wait_until(lambda: len(pulse.source_outputs()) == 1, what="the engine's mic stream")
        pulse.stop()
        err = e.wait_event("error", lambda d: "microphone" in d["message"])
        # In the agent's words: the name Settings shows, what broke, what happens next.
        assert err["message"].startswith("the microphone “Headset-Microphone” stopped: "), err
        assert err["message"].endswith("; reconnecting…"), err
        e.wait_event("error", lambda d: "speaker “Headset-Earpiece”" in d["message"])
        assert e.request("status")["capturing"] is False  # not pretending
        pulse.start()
        e.request("set_devices", **devices)  # the agent picks the headset again
        wait_until(lambda: len(pulse.source_outputs()) == 1, what="a new mic stream")
        assert e.request("status")["capturing"] is True
        e.wait_call_state(inc["call"], "disconnected", timeout=20)
        assert sipp.wait() == 0, sipp.output()  # the call was not dropped
        wait_until(lambda: pulse.source_outputs() == [], what="the mic stream to close")
    finally:
        sipp.stop()


def test_the_app_default_is_pulseaudio_streams_on_linux(
    pulse: Pulse, engine_factory: Callable[..., EnginePeer]
) -> None:
    """`--backend auto` (what the app passes) picks these streams where libpulse is."""
    env = dict(pulse.env, QT_LOGGING_RULES="qt.multimedia.symbolsresolver=false")
    e = engine_factory("agent", extra=["--backend", "auto"], env=env)
    assert e.ready["backend"] == "pulse"
