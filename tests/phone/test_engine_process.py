"""The UI's QProcess bridge to the phone engine: replies, events, crash and restart."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from client.phone.engine_process import PhoneEngineProcess
from softphone import rpc
from tests.phone.peers import rtp_base
from tests.support.wait import deadline

pytestmark = pytest.mark.phone


@pytest.fixture
def engine(qtbot: Any) -> Iterator[PhoneEngineProcess]:
    proc = PhoneEngineProcess(
        ["--bind", "127.0.0.1", "--rtp-port", str(rtp_base()), "--rtp-range", "40"]
    )
    events: list[tuple[str, dict[str, Any]]] = []
    proc.engine_event.connect(lambda name, data: events.append((name, data)))
    proc.events = events  # type: ignore[attr-defined]
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _reply(qtbot: Any, engine: PhoneEngineProcess, cmd: str, **args: Any) -> rpc.Reply:
    got: list[rpc.Reply] = []
    engine.send(cmd, got.append, **args)
    qtbot.waitUntil(lambda: bool(got), timeout=int(deadline(10) * 1000))
    return got[0]


def test_commands_get_replies_and_events_arrive_as_signals(
    qtbot: Any, engine: PhoneEngineProcess
) -> None:
    # Sent before the engine is up: queued, then delivered once it starts.
    r = _reply(qtbot, engine, "register", user="agent", domain="127.0.0.1", registrar="")
    assert r.ok and r.result["account"] == "default"
    assert engine.state == "running" and engine.ready["backend"] == "wav"
    bad = _reply(qtbot, engine, "hangup", call="call42")
    assert not bad.ok and bad.error_code == "not_found"


def test_a_killed_engine_is_restarted_and_its_account_replayed(
    qtbot: Any, engine: PhoneEngineProcess
) -> None:
    assert _reply(qtbot, engine, "register", user="agent", domain="127.0.0.1", registrar="").ok
    first = engine.pid()
    with qtbot.waitSignal(engine.crashed, timeout=int(deadline(10) * 1000)):
        os.kill(first, signal.SIGKILL)
    qtbot.waitUntil(
        lambda: engine.state == "running" and engine.pid() not in (0, first),
        timeout=int(deadline(15) * 1000),
    )
    assert engine.restarts == 1
    qtbot.waitUntil(
        lambda: _reply(qtbot, engine, "status").result["accounts"] == {"default": "Unregistered"},
        timeout=int(deadline(10) * 1000),
    )


def test_a_hung_engine_is_answered_with_a_timeout_in_words(
    qtbot: Any, engine: PhoneEngineProcess
) -> None:
    assert _reply(qtbot, engine, "status").ok
    pid = engine.pid()
    got: list[rpc.Reply] = []
    os.kill(pid, signal.SIGSTOP)  # hung, not dead: no crash signal, no restart
    try:
        engine.send("status", got.append, timeout_s=0.5)
        qtbot.waitUntil(lambda: bool(got), timeout=int(deadline(10) * 1000))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert not got[0].ok and got[0].error_code == "timeout", got[0]
    assert "did not answer “status”" in got[0].error_message
    # The engine answers in order: once the next reply is here, the late one was read too,
    # and dropped rather than handed to the caller a second time.
    assert _reply(qtbot, engine, "status").ok
    assert len(got) == 1 and engine.pid() == pid and engine.restarts == 0


def test_an_engine_that_stays_hung_is_restarted_and_its_account_replayed(
    qtbot: Any, engine: PhoneEngineProcess
) -> None:
    assert _reply(qtbot, engine, "register", user="agent", domain="127.0.0.1", registrar="").ok
    first = engine.pid()
    engine.probe_timeout_s = 1.0  # the default waits out a slow DNS resolver (20 s)
    got: list[rpc.Reply] = []
    why: list[str] = []
    engine.crashed.connect(why.append)
    os.kill(first, signal.SIGSTOP)  # and never continued: the probe after the timeout fails
    engine.send("status", got.append, timeout_s=0.5)
    qtbot.waitUntil(
        lambda: engine.state == "running" and engine.pid() not in (0, first),
        timeout=int(deadline(20) * 1000),
    )
    assert got[0].error_code == "timeout" and len(got) == 1
    assert why == ["the phone engine stopped answering"]
    assert engine.restarts == 1
    qtbot.waitUntil(
        lambda: _reply(qtbot, engine, "status").result["accounts"] == {"default": "Unregistered"},
        timeout=int(deadline(10) * 1000),
    )
