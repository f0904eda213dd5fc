"""An email thread as rich text: the router's sanitized HTML, with no remote content unless asked.

Why QTextBrowser and not a web engine: it runs no scripts, has no network stack of its own and
asks `loadResource` for every image, so one method decides what is fetched. Remote images keep
their address in `data-remote-src` (the router never leaves it in `src`), so nothing is even
requested until the agent clicks "Load remote images" on that message; then the images are
fetched off the UI thread (`Op`) and handed to the document. Any other resource the HTML
names (a CSS `url()`, a stray `src`) is refused in `loadResource` and logged.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from typing import Any

from client.formatting import clock
from client.ops import Op
from client.qt import QDesktopServices, QImage, QTextBrowser, QTextDocument, QUrl, QWidget, Signal
from client.store_reader import ThreadMessage
from client.thread_view import status_text

log = logging.getLogger(__name__)

LOAD_SCHEME = "switchboard-load-images"
RETRY_SCHEME = "switchboard-retry"
MAX_IMAGE_BYTES = 5 * 1024 * 1024
FETCH_TIMEOUT = 10.0
_REMOTE = re.compile(r'data-remote-src="(https?://[^"]*)"', re.IGNORECASE)


_REMOTE_IMG = re.compile(r"<img\b[^>]*data-remote-src=[^>]*>", re.IGNORECASE)
_ALT = re.compile(r'alt="([^"]*)"', re.IGNORECASE)


def _placeholder(tag: re.Match[str]) -> str:
    alt = _ALT.search(tag.group(0))
    label = alt.group(1) if alt and alt.group(1) else "image"
    return f"<span style='color:#8a94a3'>[{label}]</span>"


def remote_images(markup: str) -> list[str]:
    """The remote image addresses an email's HTML names (in order, without repeats)."""
    return list(dict.fromkeys(html.unescape(u) for u in _REMOTE.findall(markup)))


def fetch_image(url: str) -> bytes:
    """Download one image the agent asked for (blocking; bounded size and time).

    urllib.request is imported here: with http.client and email.parser it costs about 20 ms
    at start, for a button few agents press.
    """
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "Switchboard"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:
        data = bytes(response.read(MAX_IMAGE_BYTES + 1))
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"image over {MAX_IMAGE_BYTES} bytes")
    return data


class EmailThreadView(QTextBrowser):
    """Messages of an email conversation, newest last, each with its own remote-image switch.

    Signals:
        images_loaded(message_id, count): the agent's "Load remote images" finished.

    Args:
        fetch: downloads one URL (tests may pass their own; default `fetch_image`).
    """

    images_loaded = Signal(str, int)
    retry_requested = Signal(str)

    def __init__(
        self, parent: QWidget | None = None, fetch: Callable[[str], bytes] = fetch_image
    ) -> None:
        super().__init__(parent)
        self.setObjectName("emailThread")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.anchorClicked.connect(self._on_anchor)
        self._fetch = fetch
        self._msgs: list[ThreadMessage] = []
        self._html: dict[str, str] = {}
        self._allowed: set[str] = set()  # message ids whose remote images the agent asked for
        self._images: dict[str, QImage] = {}  # url -> image fetched at the agent's request
        self.blocked: list[str] = []  # resources refused (tests and logs)
        self.conversation_id: str | None = None

    def show_thread(
        self, conversation_id: str, msgs: list[ThreadMessage], htmls: dict[str, str]
    ) -> None:
        """Render the thread; keeps the per-message choices while the conversation stays."""
        if conversation_id != self.conversation_id:
            self._allowed.clear()
            self.conversation_id = conversation_id
        if msgs == self._msgs and htmls == self._html:
            return
        self._msgs, self._html = list(msgs), dict(htmls)
        self._render()

    def _render(self) -> None:
        bar = self.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        parts = [
            "<html><body style='font-family: sans-serif; color:#1f2933'>",
        ]
        for m in self._msgs:
            parts.append(self._message_html(m))
        parts.append("</body></html>")
        self.setHtml("".join(parts))
        if at_end:
            bar.setValue(bar.maximum())

    def _message_html(self, m: ThreadMessage) -> str:
        who = html.escape(m.author or ("Customer" if m.direction == "in" else "You"))
        when = html.escape(clock(m.created_at)) if m.created_at else ""
        mark = status_text(m)
        if mark:
            colour = "#b42318" if m.status == "failed" else "#5f6b7a"
            retry = (
                f" <a href='{RETRY_SCHEME}:{html.escape(m.id)}'>Send again</a>"
                if m.status == "failed"
                else ""
            )
            when += f" · <span style='color:{colour}'>{html.escape(mark)}</span>{retry}"
        bg = {"in": "#ffffff", "out": "#e4edfc", "note": "#fff6d9"}.get(m.direction, "#ffffff")
        head = (
            f"<p style='margin:0; color:#5f6b7a; font-size:9pt'><b style='color:#1f2933'>"
            f"{who}</b> · {when}</p>"
        )
        markup = self._html.get(m.id)
        notice = ""
        if markup:
            urls = remote_images(markup)
            if urls and m.id in self._allowed:
                markup = _REMOTE.sub(lambda g: f'src="{g.group(1)}"', markup)
            elif urls:
                # An <img> without src draws a broken-image box: show its alt text instead.
                markup = _REMOTE_IMG.sub(_placeholder, markup)
                n = len(urls)
                notice = (
                    f"<p style='margin:4px 0; font-size:9pt; color:#5f6b7a'>"
                    f"{n} remote image{'s' if n != 1 else ''} not loaded (the sender could see "
                    f"that you read it). <a href='{LOAD_SCHEME}:{html.escape(m.id)}'>"
                    f"Load remote images</a></p>"
                )
            body = markup
        else:
            body = html.escape(m.body).replace("\n", "<br>")
        return (
            f"<table width='100%' cellpadding='10' style='margin:6px 0; background:{bg}; "
            f"border:1px solid #dfe3ea'><tr><td>{head}{notice}<div>{body}</div></td></tr></table>"
        )

    def _on_anchor(self, url: QUrl) -> None:
        if url.scheme() == LOAD_SCHEME:
            self.load_remote_images(url.path())
        elif url.scheme() == RETRY_SCHEME:
            self.retry_requested.emit(url.path())
        elif url.scheme() in ("http", "https", "mailto"):
            # The agent chose to follow it: the system browser opens it, outside this app
            # (nothing is fetched here). Other schemes (file:, custom) are never opened.
            QDesktopServices.openUrl(url)
        else:
            log.warning("refused a %s: link in an email", url.scheme())

    def load_remote_images(self, message_id: str) -> None:
        """Fetch this message's remote images off the UI thread, then show them."""
        urls = [u for u in remote_images(self._html.get(message_id, "")) if u not in self._images]
        fetch = self._fetch

        def download() -> dict[str, bytes]:
            out: dict[str, bytes] = {}
            for u in urls:
                try:
                    out[u] = fetch(u)
                except Exception as exc:  # one bad image must not hide the others; logged
                    log.warning("remote image not loaded: %s", exc)
            return out

        def done(images: dict[str, bytes]) -> None:
            for u, data in images.items():
                img = QImage.fromData(data)
                if not img.isNull():
                    self._images[u] = img
            self._allowed.add(message_id)
            self._render()
            self.images_loaded.emit(message_id, len(images))

        Op(download).success(done).run()

    def loadResource(self, kind: int, name: QUrl | str) -> Any:  # noqa: N802
        """Only images the agent asked for; everything else is refused (never fetched)."""
        if isinstance(name, str):
            name = QUrl(name)
        image_kind = QTextDocument.ResourceType.ImageResource.value
        if int(getattr(kind, "value", kind)) == image_kind:
            img = self._images.get(name.toString())
            if img is not None:
                return img
        self.blocked.append(name.toString())
        log.debug("blocked a resource in an email: %s", name.scheme())
        return None
