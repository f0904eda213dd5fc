"""Email in the thread: the router's sanitized HTML, and no remote fetch until the agent asks.

A loopback HTTP server counts requests: it must see none while the message is shown, and the
image once "Load remote images" is clicked on that message.
"""

from __future__ import annotations

import base64
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from client.email_view import LOAD_SCHEME
from client.main_window import MainWindow
from client.qt import QUrl
from tests.support.wait import deadline

T = int(deadline(10) * 1000)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


class Counter(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("H", (Counter,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()
        server.server_close()


def _email_with_html(cache: Path, base: str) -> tuple[str, str]:
    with sqlite3.connect(cache) as db:
        (cid,) = db.execute(
            "SELECT id FROM conversations WHERE channel = 'email' ORDER BY id LIMIT 1"
        ).fetchone()
        db.execute(
            "INSERT INTO messages (id, conversation_id, seq, direction, author, body, html, "
            "created_at, status) VALUES ('m-html', ?, 999, 'in', 'x', 'Plain text version', ?, "
            "strftime('%s','now'), '')",
            [
                cid,
                "<p>Hello <b>team</b>, the <a href='https://example.com/inv'>invoice</a>:</p>"
                f'<p><img alt="logo" data-remote-src="{base}/logo.png"></p>'
                f"<p style=\"background: url('{base}/bg.png')\">Thanks</p>",
            ],
        )
    return str(cid), "m-html"


def test_email_html_shows_without_remote_fetch_until_asked(
    qtbot: QtBot, window: MainWindow, seeded: Path, image_server: tuple[str, list[str]]
) -> None:
    base, hits = image_server
    cid, mid = _email_with_html(seeded, base)
    window.agent.open_conversation(cid)
    view = window.conversation.email_view
    qtbot.waitUntil(lambda: window.conversation.threads.currentWidget() is view, timeout=T)
    text = view.toPlainText()
    assert "Hello team" in text and "invoice" in text
    assert "Load remote images" in text and "Plain text version" not in text
    # Plain-text messages of the same conversation still show as text.
    assert window.reader.thread(cid)[0].body.split()[0] in text
    # QTextBrowser asks for resources while it lays out (synchronously): none reached the
    # network, and the CSS url() was refused by loadResource.
    window.scheduler.flush()
    assert hits == []
    assert "logo.png" not in " ".join(view.blocked)

    with qtbot.waitSignal(view.images_loaded, timeout=T) as blocker:
        view.anchorClicked.emit(QUrl(f"{LOAD_SCHEME}:{mid}"))
    assert blocker.args == [mid, 1]
    assert hits == ["/logo.png"]  # only the image the agent asked for; never the CSS url()
    assert f"{base}/logo.png" in view._images
    assert "Load remote images" not in view.toPlainText()
