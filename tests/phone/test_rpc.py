"""The JSON-lines codec, and the engine process facing bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from softphone import rpc
from tests.phone.engine_peer import ROOT, EngineError, EnginePeer
from tests.phone.peers import rtp_base
from tests.support.wait import deadline, wait_until

pytestmark = pytest.mark.phone


def test_messages_round_trip_one_line_each() -> None:
    cmd = rpc.command("dial", "c1", to="+3212345678", region=None)
    line = rpc.encode(cmd)
    assert line.endswith("\n") and line.count("\n") == 1
    assert rpc.decode(line) == rpc.Command("c1", "dial", {"to": "+3212345678"})
    for msg in (
        rpc.ok("c2", call="call1"),
        rpc.error("c3", "not_found", "no call 'x'"),
        rpc.Event("dtmf", {"digit": "5", "note": "é\nnew line"}),
    ):
        text = rpc.encode(msg)
        assert text.count("\n") == 1
        assert rpc.decode(text) == msg


@pytest.mark.parametrize(
    ("line", "code", "msg_id"),
    [
        ("not json", "malformed", None),
        ("[1, 2]", "malformed", None),
        ('{"cmd": "dial"}', "malformed", None),
        ('{"id": "7", "cmd": "fly"}', "unknown_command", "7"),
        ('{"id": "8", "cmd": "dial", "args": {"to": "1", "colour": "red"}}', "bad_args", "8"),
        ('{"id": 9, "cmd": "dial", "args": []}', "bad_args", "9"),
        (b"\xff\xfe", "malformed", None),
    ],
)
def test_bad_lines_raise_protocol_errors_with_what_could_be_salvaged(
    line: str | bytes, code: str, msg_id: str | None
) -> None:
    with pytest.raises(rpc.ProtocolError) as info:
        rpc.decode(line)
    assert info.value.code == code and info.value.msg_id == msg_id
    assert str(info.value)


def test_every_command_and_event_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "engine-protocol.md").read_text()
    missing = [n for n in (*rpc.COMMANDS, *rpc.EVENTS) if f"`{n}`" not in doc]
    assert not missing, f"undocumented in docs/engine-protocol.md: {missing}"


def test_the_engine_answers_bad_input_and_keeps_serving(
    engine_factory: Callable[..., EnginePeer],
) -> None:
    e = engine_factory("agent")
    e.send_line("this is not json")
    e.send_line('{"id": "x1", "cmd": "teleport"}')
    e.send_line('{"id": "x2", "cmd": "answer", "args": {}}')
    e.send_line('{"id": "x3", "cmd": "hangup", "args": {"call": "call99"}}')
    e.send_line(json.dumps({"id": "x4", "cmd": "dial", "args": {"to": "+32 2 555"}}))
    bad = wait_until(
        lambda: (
            [m for m in e.messages if isinstance(m, rpc.Reply) and not m.ok]
            if len([m for m in e.messages if isinstance(m, rpc.Reply)]) >= 5
            else None
        ),
        what="five error replies",
    )
    by_id = {m.id: m for m in bad}
    assert by_id[None].error_code == "malformed"
    assert by_id["x1"].error_code == "unknown_command"
    assert by_id["x2"].error_code == "bad_args" and "call" in by_id["x2"].error_message
    assert by_id["x3"].error_code == "not_found"
    assert by_id["x4"].error_code == "not_found"  # no account yet: "register first"
    assert "register first" in by_id["x4"].error_message
    assert e.request("status")["calls"] == {}
    e.request("register", user="agent", domain="127.0.0.1", registrar="")
    with pytest.raises(EngineError, match=r"not a phone number|neither"):
        e.request("dial", to="+1 (no digits)")


def test_closing_stdin_shuts_the_engine_down_cleanly(
    engine_factory: Callable[..., EnginePeer],
) -> None:
    e = engine_factory("agent")
    assert e.proc.stdin is not None
    e.proc.stdin.close()
    e.wait_event("stopped", timeout=15)
    assert e.proc.wait(timeout=15) == 0


def test_an_engine_whose_ui_vanished_shuts_down_cleanly(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the UI is gone before the engine says a word
    log_path = tmp_path / "engine.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "softphone",
                "rpc",
                "--bind",
                "127.0.0.1",
                "--rtp-port",
                str(rtp_base()),
                "--rtp-range",
                "40",
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=write_end,
            stderr=log_file,
        )
        os.close(write_end)
        try:
            code = proc.wait(timeout=deadline(20))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            assert proc.stdin is not None
            proc.stdin.close()
    assert code == 0, log_path.read_text()[-2000:]
    assert "the UI stopped reading" in log_path.read_text()
