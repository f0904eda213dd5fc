"""Waiting times and their colours, by channel."""

from __future__ import annotations

from client.formatting import duration, wait_level
from client.inbox_model import waiting_seconds
from client.store_reader import InboxRow


def _row(**kw: object) -> InboxRow:
    base: dict[str, object] = dict(
        id="c",
        channel="chat",
        customer_name="A",
        preview="",
        subject="",
        status="assigned",
        queue="q",
        assigned_agent=None,
        last_inbound_at=100.0,
        last_message_at=100.0,
        unread=0,
    )
    base.update(kw)
    return InboxRow(**base)  # type: ignore[arg-type]


def test_durations_read_compactly() -> None:
    assert [duration(s) for s in (5, 75, 3600, 3720, 90000)] == [
        "5s",
        "1m",
        "1h",
        "1h 02m",
        "1d 1h",
    ]


def test_wait_levels_follow_the_channel() -> None:
    assert (
        wait_level("chat", 30) == 0 and wait_level("chat", 90) == 1 and wait_level("chat", 400) == 2
    )
    assert wait_level("email", 400) == 0 and wait_level("email", 5 * 3600) == 2


def test_the_customer_waits_only_until_we_answer() -> None:
    assert waiting_seconds(_row(), now=160.0) == 60.0
    assert waiting_seconds(_row(last_message_at=130.0), now=160.0) is None  # we replied
    assert waiting_seconds(_row(status="closed"), now=160.0) is None
