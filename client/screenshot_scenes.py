"""Scenes for the documentation screenshots: live figures, an email with HTML, a call.

Why real widgets fed real data: the metrics and the email are rows in the seeded cache (the
same tables the sync engine writes), and the call is the phone panel driven by the engine's
own event lines (docs/engine-protocol.md), so the pictures show what the code really draws.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from client.main_window import MainWindow

log = logging.getLogger(__name__)

EMAIL_HTML = (
    "<p>Hello,</p><p>I was charged <b>twice</b> for invoice <b>INV-20931</b> "
    "(see the statement below). Could you refund the duplicate?</p>"
    "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
    "<tr><th>Date</th><th>Description</th><th>Amount</th></tr>"
    "<tr><td>3 Nov</td><td>Pro plan</td><td>$49.00</td></tr>"
    "<tr><td>3 Nov</td><td>Pro plan</td><td>$49.00</td></tr></table>"
    '<p><img alt="Company logo" data-remote-src="https://tracker.example.com/logo.png"></p>'
    "<p>Thanks,<br>João</p>"
)


def seed_metrics(cache: Path, now: float) -> None:
    """What the router's `metrics` event leaves in the cache (docs/metrics.md)."""
    figures = {
        "handled": 23,
        "aht": 312.5,
        "asa": 14.2,
        "service_level": 0.91,
        "completed": 21,
        "queues": {
            "support": {
                "depth": 4,
                "longest_wait": 95.0,
                "service_level_now": 0.78,
                "service_level": 0.86,
                "target": 0.8,
            },
            "sales": {
                "depth": 1,
                "longest_wait": 12.0,
                "service_level_now": 0.9,
                "service_level": 0.72,
                "target": 0.8,
            },
        },
        "at": now,
    }
    with sqlite3.connect(cache) as db:
        db.executemany(
            "INSERT OR REPLACE INTO metrics (key, value, updated_at) VALUES (?, ?, ?)",
            [(k, json.dumps(v), now) for k, v in figures.items()],
        )


def add_email_html(cache: Path) -> str:
    """Give the first email conversation's opening message sanitized HTML; returns its id."""
    with sqlite3.connect(cache) as db:
        (cid,) = db.execute(
            "SELECT id FROM conversations WHERE channel = 'email' ORDER BY id LIMIT 1"
        ).fetchone()
        db.execute(
            "UPDATE messages SET html = ? WHERE id = (SELECT id FROM messages "
            "WHERE conversation_id = ? AND direction = 'in' ORDER BY seq LIMIT 1)",
            [EMAIL_HTML, cid],
        )
    return str(cid)


def ring_and_answer(win: MainWindow, number: str) -> None:
    """Drive the phone column with the engine's own events: registered, ringing, in call."""
    column = win.phone
    column.stack.setCurrentWidget(column.phone_scroll)
    # No sync engine runs for the pictures: the column's call reports have nowhere to go.
    column.blockSignals(True)
    emit = win.phone_engine.engine_event.emit
    emit("ready", {"version": "2.15.1"})
    emit(
        "reg_state",
        {"account": "default", "state": "Registered", "code": 200, "reason": "registered"},
    )
    remote = f'"{number}" <sip:{number}@pbx.example.com>'
    emit("incoming_call", {"call": "call1", "from": remote, "from_name": ""})
    emit(
        "call_state",
        {
            "call": "call1",
            "state": "confirmed",
            "remote": remote,
            "role": "incoming",
            "duration": 0,
        },
    )
    emit("quality", {"call": "call1", "mos": 4.3, "loss_pct": 0.0, "jitter_ms": 2.1})
    column.panel.rows["call1"].who.setText(number)
    log.debug("screenshot call scene at %s", time.time())
