"""The wire format (sync.protocol) and the client state machine (sync.session), with plain data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sync import protocol as p
from sync.session import (
    Acked,
    ApplyEvent,
    ApplySnapshotPage,
    BecameLive,
    ClientProtocol,
    Fatal,
    FatalKind,
    Ignored,
    Malformed,
    Phase,
    SendFrame,
    ServerError,
    Welcomed,
)

MID = "5b1e3f9c-2f41-4a5e-9d0c-6c1f7f0f2a10"
CID = "8f0c5a0e-1d2b-4c3d-8e4f-a5b6c7d8e9f0"


def wire(**obj: Any) -> str:
    return json.dumps(obj)


def send_args(body: str = "Hello!") -> dict[str, Any]:
    return {"conversation_id": "c-12", "message_id": MID, "body": body, "format": "text"}


# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("{not json", p.BAD_FRAME, "not valid JSON"),
        ("[1, 2]", p.BAD_FRAME, "not an object"),
        ('"hello"', p.BAD_FRAME, "not an object"),
        ("{}", p.BAD_FRAME, 'no "type"'),
        ('{"type": 3}', p.BAD_FRAME, "not a string"),
        ('{"type": "hello"}', p.UNKNOWN_TYPE, 'Unknown frame type "hello"'),
        ('{"type": "resume"}', p.BAD_FRAME, '"since" must be an integer'),
        ('{"type": "resume", "since": -1}', p.BAD_FRAME, "at least 0"),
        ('{"type": "resume", "since": true}', p.BAD_FRAME, "integer"),
        ('{"type": "resume", "since": NaN}', p.BAD_FRAME, "not valid JSON"),
    ],
)
def test_client_frame_refusals_name_the_problem(text: str, code: str, words: str) -> None:
    with pytest.raises(p.ProtocolError) as err:
        p.parse_client_frame(text)
    assert err.value.code == code
    assert words in err.value.message
    assert err.value.command_id is None


def test_binary_and_oversized_frames_are_refused() -> None:
    with pytest.raises(p.ProtocolError) as err:
        p.parse_client_frame(b'{"type": "resume", "since": 0}')
    assert err.value.code == p.BAD_FRAME
    big = wire(type="resume", since=0, pad="x" * p.MAX_FRAME_BYTES)
    with pytest.raises(p.ProtocolError) as err:
        p.parse_client_frame(big)
    assert err.value.code == p.TOO_LARGE
    # Multi-byte characters count in bytes, not characters.
    wide = json.dumps(
        {"type": "resume", "since": 0, "pad": "é" * (p.MAX_FRAME_BYTES // 2 + 10)},
        ensure_ascii=False,
    )
    assert len(wide) < p.MAX_FRAME_BYTES < len(wide.encode("utf-8"))
    with pytest.raises(p.ProtocolError) as err:
        p.parse_client_frame(wide)
    assert err.value.code == p.TOO_LARGE


def test_a_good_command_round_trips() -> None:
    cmd = p.make_command("send_message", send_args(), command_id=CID)
    assert p.parse_client_frame(p.encode(cmd)) == cmd
    assert p.parse_client_frame(p.encode(p.Resume(41))) == p.Resume(41)


@pytest.mark.parametrize(
    ("frame", "code", "words", "has_id"),
    [
        ({"id": "nope", "name": "accept", "args": {"offer_id": "o"}}, p.BAD_COMMAND, "UUID", False),
        ({"id": CID, "name": "fly", "args": {}}, p.UNKNOWN_COMMAND, "fly", True),
        ({"id": CID, "name": "accept", "args": {}}, p.BAD_COMMAND, "missing argument", True),
        ({"id": CID, "name": "accept", "args": {"offer_id": 4}}, p.BAD_COMMAND, "offer_id", True),
        (
            {"id": CID, "name": "accept", "args": {"offer_id": "o", "x": 1}},
            p.BAD_COMMAND,
            "unexpected",
            True,
        ),
        ({"id": CID, "name": "accept", "args": []}, p.BAD_COMMAND, "object", True),
        (
            {"id": CID, "name": "set_state", "args": {"state": "asleep"}},
            p.BAD_COMMAND,
            "available",
            True,
        ),
        (
            {"id": CID, "name": "send_message", "args": {**send_args(), "message_id": "m"}},
            p.BAD_COMMAND,
            "message_id",
            True,
        ),
        (
            {"id": CID, "name": "send_message", "args": send_args("x" * (p.MAX_BODY_CHARS + 1))},
            p.TOO_LARGE,
            "limit is 20000",
            True,
        ),
        ({"id": CID, "name": "send_message", "args": send_args("")}, p.BAD_COMMAND, "body", True),
        (
            {
                "id": CID,
                "name": "transfer",
                "args": {"conversation_id": "c", "queue": "q", "agent": "a"},
            },
            p.BAD_COMMAND,
            "exactly",
            True,
        ),
        (
            {
                "id": CID,
                "name": "call_event",
                "args": {"call_id": "k", "direction": "up", "remote": "r", "state": "s", "at": 1},
            },
            p.BAD_COMMAND,
            "direction",
            True,
        ),
    ],
)
def test_bad_commands(frame: dict[str, Any], code: str, words: str, has_id: bool) -> None:
    with pytest.raises(p.ProtocolError) as err:
        p.parse_client_frame(wire(type="command", **frame))
    assert err.value.code == code
    assert words in err.value.message
    # With a usable id the router answers with a refused ack for it.
    assert (err.value.command_id == CID) is has_id


def test_body_at_the_limit_is_accepted() -> None:
    cmd = p.make_command(
        "add_note", {"conversation_id": "c", "message_id": MID, "body": "é" * p.MAX_BODY_CHARS}
    )
    assert p.parse_client_frame(p.encode(cmd)) == cmd


def test_encode_refuses_a_frame_over_the_limit() -> None:
    page = p.Snapshot(0, True, 1, messages=({"id": "m", "body": "x" * p.MAX_FRAME_BYTES},))
    with pytest.raises(p.ProtocolError) as err:
        p.encode(page)
    assert err.value.code == p.TOO_LARGE


def test_server_frames_round_trip() -> None:
    frames: list[p.ServerFrame] = [
        p.Hello(1, {"id": "a-ana", "name": "Ana"}, 1.5),
        p.Event(3, {"kind": "offer_revoked", "offer_id": "o1", "reason": "timeout"}),
        p.Snapshot(0, False, 9, conversations=({"id": "c1"},), agent_state={"state": "away"}),
        p.Live(9),
        p.ack_ok(CID, {"seq": 4}),
        p.ack_error(CID, p.FORBIDDEN, "Not yours."),
        p.ErrorFrame(p.BAD_FRAME, "Frame is not valid JSON."),
    ]
    for frame in frames:
        assert p.parse_server_frame(p.encode(frame)) == frame


@pytest.mark.parametrize(
    ("obj", "words"),
    [
        ({"type": "event", "seq": 0, "event": {"kind": "metrics", "metrics": {}}}, "at least 1"),
        ({"type": "event", "seq": 1, "event": {}}, "kind"),
        (
            {"type": "event", "seq": 1, "event": {"kind": "message", "message": {"id": "m"}}},
            "conversation_id",
        ),
        ({"type": "hello", "protocol": 1, "server_time": 0}, "agent"),
        ({"type": "snapshot", "page": 0, "seq": 1}, "last"),
        ({"type": "snapshot", "page": 0, "seq": 1, "last": True, "messages": [{}]}, "ids"),
        ({"type": "ack", "id": CID, "ok": False}, "error"),
        ({"type": "ack", "id": "x", "ok": True}, "UUID"),
        ({"type": "resume", "since": 1}, "Unknown frame type"),
    ],
)
def test_bad_server_frames(obj: dict[str, Any], words: str) -> None:
    with pytest.raises(p.ProtocolError) as err:
        p.parse_server_frame(json.dumps(obj))
    assert words in err.value.message


def test_unknown_event_kinds_pass_for_forward_compatibility() -> None:
    frame = p.parse_server_frame(wire(type="event", seq=2, event={"kind": "weather"}))
    assert isinstance(frame, p.Event) and frame.kind == "weather"


# --------------------------------------------------------------------------- state machine


def hello(version: int = 1) -> str:
    return wire(type="hello", protocol=version, agent={"id": "a-ana"}, server_time=10.0)


def event(seq: int) -> str:
    return wire(type="event", seq=seq, event={"kind": "agent_state", "state": "available"})


def connected(cursor: int = 0) -> ClientProtocol:
    proto = ClientProtocol(cursor)
    effects = proto.receive_text(hello())
    assert effects == [Welcomed({"id": "a-ana"}, 10.0), SendFrame(p.Resume(cursor))]
    return proto


def test_version_mismatch_is_fatal_and_not_retryable() -> None:
    proto = ClientProtocol(0)
    [fatal] = proto.receive_text(hello(2))
    assert isinstance(fatal, Fatal) and fatal.kind is FatalKind.VERSION
    assert "protocol 2" in fatal.message and "update the app" in fatal.message
    assert not fatal.kind.retryable
    assert proto.phase is Phase.CLOSED


def test_frames_before_hello_are_a_violation() -> None:
    [fatal] = ClientProtocol(0).receive_text(event(1))
    assert isinstance(fatal, Fatal) and fatal.kind is FatalKind.VIOLATION


def test_replay_overlap_is_ignored_and_events_apply_in_order() -> None:
    proto = connected(cursor=41)
    assert isinstance(proto.receive_text(event(40))[0], Ignored)
    assert isinstance(proto.receive_text(event(41))[0], Ignored)
    assert proto.receive_text(event(42)) == [
        ApplyEvent(42, {"kind": "agent_state", "state": "available"})
    ]
    assert isinstance(proto.receive_text(event(42))[0], Ignored)
    assert proto.cursor == 42


def test_a_gap_is_fatal_and_retryable_never_applied() -> None:
    proto = connected(cursor=5)
    [fatal] = proto.receive_text(event(7))
    assert isinstance(fatal, Fatal) and fatal.kind is FatalKind.GAP and fatal.kind.retryable
    assert proto.cursor == 5
    assert isinstance(proto.receive_text(event(6))[0], Ignored)  # closed: nothing applied


def test_commands_wait_for_live_and_go_in_order() -> None:
    proto = connected(cursor=3)
    first = p.make_command("accept", {"offer_id": "o1"})
    second = p.make_command("send_message", send_args())
    assert proto.send_command(first) == []
    assert proto.send_command(second) == []
    assert isinstance(proto.send_command(first)[0], Ignored)  # duplicate id: once
    proto.receive_text(event(4))
    effects = proto.receive_text(wire(type="live", seq=4))
    assert effects == [BecameLive(4), SendFrame(first), SendFrame(second)]
    third = p.make_command("decline", {"offer_id": "o2"})
    assert proto.send_command(third) == [SendFrame(third)]
    assert proto.pending == [first.id, second.id, third.id]


def test_out_of_order_and_duplicate_acks() -> None:
    proto = connected()
    cmds = [p.make_command("accept", {"offer_id": f"o{i}"}) for i in range(3)]
    for cmd in cmds:
        proto.send_command(cmd)
    proto.receive_text(wire(type="live", seq=0))
    later = proto.receive(p.ack_error(cmds[2].id, p.OFFER_GONE, "The offer expired."))
    assert later == [Acked(cmds[2].id, False, {}, p.AckError(p.OFFER_GONE, "The offer expired."))]
    assert proto.receive(p.ack_ok(cmds[0].id, {"conversation_id": "c"})) == [
        Acked(cmds[0].id, True, {"conversation_id": "c"}, None)
    ]
    assert isinstance(proto.receive(p.ack_ok(cmds[0].id))[0], Ignored)
    assert isinstance(proto.receive(p.ack_ok(p.new_id()))[0], Ignored)
    assert proto.pending == [cmds[1].id]


def test_snapshot_pages_then_live() -> None:
    proto = connected(cursor=0)
    page0 = wire(type="snapshot", page=0, last=False, seq=57, conversations=[{"id": "c1"}])
    page1 = wire(type="snapshot", page=1, last=True, seq=57, messages=[{"id": "m1"}])
    [first] = proto.receive_text(page0)
    assert isinstance(first, ApplySnapshotPage) and first.snapshot.page == 0
    assert proto.cursor == 0  # not until the last page
    [second] = proto.receive_text(page1)
    assert isinstance(second, ApplySnapshotPage) and second.snapshot.last
    assert proto.cursor == 57
    assert proto.receive_text(event(58))[0] == ApplyEvent(58, json.loads(event(58))["event"])
    assert proto.receive_text(wire(type="live", seq=58)) == [BecameLive(58)]


@pytest.mark.parametrize(
    "frames",
    [
        [wire(type="snapshot", page=1, last=True, seq=5)],
        [wire(type="snapshot", page=0, last=False, seq=5), event(1)],
        [
            wire(type="snapshot", page=0, last=False, seq=5),
            wire(type="snapshot", page=1, last=True, seq=6),
        ],
        [wire(type="snapshot", page=0, last=False, seq=5), wire(type="live", seq=5)],
        [wire(type="live", seq=0), wire(type="live", seq=0)],
        [wire(type="live", seq=0), wire(type="snapshot", page=0, last=True, seq=5)],
        [hello()],
    ],
)
def test_out_of_order_session_frames_are_violations(frames: list[str]) -> None:
    proto = connected()
    effects = [e for f in frames for e in proto.receive_text(f)]
    assert isinstance(effects[-1], Fatal) and effects[-1].kind is FatalKind.VIOLATION


def test_live_ahead_of_the_events_is_a_gap() -> None:
    proto = connected(cursor=2)
    [fatal] = proto.receive_text(wire(type="live", seq=4))
    assert isinstance(fatal, Fatal) and fatal.kind is FatalKind.GAP


def test_malformed_frames_are_reported_not_fatal() -> None:
    proto = connected()
    [bad] = proto.receive_text("{oops")
    assert isinstance(bad, Malformed) and bad.code == p.BAD_FRAME
    assert proto.phase is Phase.REPLAY
    assert proto.receive_text(wire(type="error", code="too_large", message="Too big.")) == [
        ServerError("too_large", "Too big.")
    ]


def test_auth_error_frame_is_fatal_and_not_retryable() -> None:
    proto = connected()
    [fatal] = proto.receive_text(wire(type="error", code="token_expired", message="Expired."))
    assert isinstance(fatal, Fatal) and fatal.kind is FatalKind.AUTH
    assert not fatal.kind.retryable
