"""Render the main window to PNGs: `python -m client.screenshots docs/screenshots`.

Why from a seeded cache: the pictures in docs/ must be reproducible on any machine, offscreen,
without a router; the seeded cache is a real SQLite file with the real schema, read through the
same reader and widgets the app uses.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def render(out_dir: Path) -> list[Path]:
    """Write the screenshots into `out_dir` and return their paths."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from client.demo_cache import add_local_messages, add_offer, seed_cache
    from client.main_window import DEFAULT_SIZE, MainWindow
    from client.qt import QApplication
    from client.screenshot_scenes import add_email_html, ring_and_answer, seed_metrics
    from client.status_bar import ConnectionStatus
    from client.store_reader import StoreReader
    from client.theme import apply_theme, set_names

    set_names()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    apply_theme(app)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        now = time.time()
        cache = seed_cache(Path(tmp) / "cache.db", conversations=80, now=now)
        add_local_messages(cache, "c-0", now)
        add_offer(cache, "c-3", expires_at=now + 17, now=now - 13)
        reader = StoreReader(cache)
        win = MainWindow(reader, embedded=True)
        win.resize(*DEFAULT_SIZE)  # the offscreen screen is small; show the real default
        win.status.set_status(ConnectionStatus("online", outbox=1))
        win.agent_label.setText("Ana Lima")
        win.show()
        win.inbox.select("c-0")
        app.processEvents()
        win.scheduler.flush()
        for _ in range(5):
            app.processEvents()
        path = out_dir / "main-window.png"
        win.grab().save(str(path))
        written.append(path)

        win.status.set_status(ConnectionStatus("offline", outbox=3))
        win.offers.show_offers([])
        win.inbox.scope_buttons["queue"].click()
        app.processEvents()
        path = out_dir / "offline-queue.png"
        win.grab().save(str(path))
        written.append(path)
        win.close()
        reader.close()

        # Live figures, an HTML email, and a call from a known customer.
        seed_metrics(cache, now)
        email_id = add_email_html(cache)
        reader = StoreReader(cache)
        win = MainWindow(reader, embedded=True)
        win.resize(*DEFAULT_SIZE)
        win.status.set_status(ConnectionStatus("online", outbox=0))
        win.agent_label.setText("Ana Lima")
        win.show()
        win.inbox.select(email_id)
        app.processEvents()
        win.scheduler.flush()
        for _ in range(5):
            app.processEvents()
        path = out_dir / "email-conversation.png"
        win.grab().save(str(path))
        written.append(path)

        # The dialogs an agent fills in: transfer to a colleague (the router's team list),
        # and the phone settings with the remote-worker (NAT) fields.
        path = out_dir / "transfer-dialog.png"
        _grab_dialog(_transfer_dialog(win), path, app)
        written.append(path)
        path = out_dir / "phone-settings.png"
        _grab_dialog(_phone_settings(win), path, app)
        written.append(path)

        ring_and_answer(win, "+15550000000")
        for _ in range(5):
            app.processEvents()
        path = out_dir / "phone-call.png"
        win.grab().save(str(path))
        written.append(path)

        # What the agent reads when the sound server restarts mid-call (the engine's words).
        win.phone_engine.engine_event.emit(
            "error",
            {
                "code": "audio_error",
                "message": "the speaker “Headset Earpiece” stopped: Connection terminated; "
                "reconnecting…",
            },
        )
        for _ in range(5):
            app.processEvents()
        path = out_dir / "phone-audio-error.png"
        win.phone.grab().save(str(path))
        written.append(path)
        win.close()
        reader.close()

        empty = Path(tmp) / "empty.db"
        seed_cache(empty, conversations=0, now=now)
        reader = StoreReader(empty)
        win = MainWindow(reader, embedded=True)
        win.resize(*DEFAULT_SIZE)
        win.status.set_status(ConnectionStatus("offline", retry_at=time.monotonic() + 4))
        win.show()
        app.processEvents()
        path = out_dir / "empty-inbox.png"
        win.grab().save(str(path))
        written.append(path)
        win.close()
        reader.close()
    return written


def _grab_dialog(dialog: Any, path: Path, app: Any) -> None:
    dialog.show()
    for _ in range(3):
        app.processEvents()
    dialog.grab().save(str(path))
    dialog.close()


def _transfer_dialog(parent: Any) -> Any:
    from client.conversation_controls import TransferDialog

    dialog = TransferDialog(("support", "sales"), parent, conversation_queue="support")
    dialog.kind.setCurrentIndex(dialog.kind.findData("agent"))
    dialog.set_team(
        [
            {"id": "a-ben", "name": "Ben Okafor", "state": "available", "queues": ["support"]},
            {
                "id": "a-chloe",
                "name": "Chloé Martin",
                "state": "away",
                "reason": "lunch",
                "queues": ["support", "sales"],
            },
            {"id": "a-dev", "name": "Dev Patel", "state": "available", "queues": ["sales"]},
        ]
    )
    return dialog


def _phone_settings(parent: Any) -> Any:
    from client.sip_settings import SipAccount, SipSettingsDialog

    account = SipAccount(
        domain="pbx.example.com",
        username="ana",
        transport="tls",
        stun_server="stun.example.com",
        ice=True,
        turn_server="turn.example.com:3478",
        turn_user="ana",
    )
    return SipSettingsDialog(account, parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path, nargs="?", default=Path("docs/screenshots"))
    args = parser.parse_args(argv)
    for path in render(args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
