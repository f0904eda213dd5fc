"""The open conversation: customer header, thread, composer; or a calm hint when none is open.

Why it reads the cache itself (through the shared reader) rather than being handed rows: the
main window only tells it "conversation X changed"; it re-reads a bounded thread (500 messages)
and header in well under a millisecond and keeps its own scroll position.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from client.cache_extras import agent_info, message_html
from client.elided_label import ElidedLabel
from client.qt import (
    QElapsedTimer,
    QHBoxLayout,
    QLabel,
    QSize,
    QStackedWidget,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from client.resources import CHANNEL_NAMES, channel_icon
from client.store_reader import ConversationHeader, StoreReader, ThreadMessage

if TYPE_CHECKING:
    from client.composer import Composer
    from client.conversation_controls import ConversationControls
    from client.email_view import EmailThreadView
    from client.thread_view import ThreadView

log = logging.getLogger(__name__)

DRAFT_SAVE_MS = 500
TYPING_EVERY_MS = 3000  # the customer's page shows "typing" for 5 s after each hint
IDENTITY_NAMES = {"email": "Email", "phone": "Phone", "chat": "Chat visitor", "sms": "SMS"}
STATUS_NAMES = {
    "queued": "In queue",
    "offered": "Being offered",
    "assigned": "Assigned",
    "wrap_up": "Wrap-up",
    "closed": "Closed",
}


class ConversationHeaderBar(QWidget):
    """Customer name, channel and status, and every identity we know for the customer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("convHeader")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 10, 16, 10)
        layout.setSpacing(12)
        self.icon = QLabel(self)
        self.icon.setFixedSize(QSize(32, 32))
        layout.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        col = QVBoxLayout()
        col.setSpacing(2)
        top = QHBoxLayout()
        top.setSpacing(10)
        self.name = QLabel(self)
        self.name.setObjectName("customerName")
        self.name.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.name)
        top.addStretch(1)
        # Status beside the name; the identities below get the full width to wrap in.
        self.status = ElidedLabel(parent=self)
        self.status.setObjectName("statusTag")
        top.addWidget(self.status, 0, Qt.AlignmentFlag.AlignVCenter)
        col.addLayout(top)
        self.identities = QLabel(self)
        self.identities.setObjectName("identities")
        self.identities.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.identities.setWordWrap(True)
        col.addWidget(self.identities)
        self.subject = QLabel(self)
        self.subject.setObjectName("subject")
        self.subject.setWordWrap(True)
        col.addWidget(self.subject)
        layout.addLayout(col, 1)

    def show_header(self, h: ConversationHeader, my_agent: str | None) -> None:
        self.icon.setPixmap(channel_icon(h.channel).pixmap(32, 32))
        self.name.setText(h.customer_name or "Unknown customer")
        # No-break spaces inside each identity: lines wrap between identities, never inside.
        parts = [
            f"{IDENTITY_NAMES.get(i.kind, i.kind.title())}: {i.value}".replace(" ", "\u00a0")
            for i in h.identities
        ]
        self.identities.setText("\u2003 ".join(parts) if parts else "No contact details on file")
        self.subject.setText(h.subject)
        self.subject.setVisible(bool(h.subject))
        status = STATUS_NAMES.get(h.status, h.status.title())
        if h.status == "assigned":
            status = "Assigned to you" if h.assigned_agent == my_agent else "Assigned"
        chan = CHANNEL_NAMES.get(h.channel, h.channel)
        text = f"{chan} · {h.queue} · {status}" if h.queue else f"{chan} · {status}"
        self.status.setText(text)
        self.status.setToolTip(text)


class ConversationView(QWidget):
    """Header + thread + composer for one conversation at a time; emits
    `draft_changed(conversation_id, text)` (debounced) so the owner can persist the draft, and
    `typing(conversation_id)` at most every 3 s while the agent types in a chat."""

    draft_changed = Signal(str, str)
    typing = Signal(str)

    def __init__(self, reader: StoreReader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversationView")
        self.reader = reader
        self.conversation_id: str | None = None
        self.my_agent: str | None = None
        self.my_name = ""
        self._drafts: dict[str, str] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.stack = QStackedWidget(self)
        outer.addWidget(self.stack)

        self.placeholder = QLabel(
            "Pick a conversation on the left to read it and reply.\n"
            "New offers appear on the right — accept them to start working.",
            self,
        )
        self.placeholder.setObjectName("emptyText")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.placeholder)

        # Drafts reach the cache (through the engine) half a second after the agent stops
        # typing, so a crash or a kill loses at most that half second of typing.
        self._loading = False
        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_SAVE_MS)
        self._draft_timer.timeout.connect(self.flush_draft)
        self._typing_clock = QElapsedTimer()
        self.channel = ""
        self._page: QWidget | None = None
        self._on_built: list[Callable[[ConversationView], None]] = []
        # The first frame shows the placeholder: the page (header, controls, thread, email
        # view, composer and their imports, ~40 ms) is built on the next turn of the event
        # loop, or at once if something needs it sooner.
        QTimer.singleShot(0, self, self._ensure_page)

    def when_built(self, fn: Callable[[ConversationView], None]) -> None:
        """Call `fn(self)` once the conversation page exists (now, if it already does):
        the window wires the composer and controls to the engine through this."""
        if self._page is not None:
            fn(self)
        else:
            self._on_built.append(fn)

    def _ensure_page(self) -> QWidget:
        if self._page is None:
            self._page = self._build_page()
            callbacks, self._on_built = self._on_built, []
            for fn in callbacks:
                fn(self)
        return self._page

    def _build_page(self) -> QWidget:
        """Header + controls + thread/email stack + composer (imported here, see above)."""
        from client.composer import Composer
        from client.conversation_controls import ConversationControls
        from client.email_view import EmailThreadView
        from client.thread_view import ThreadView

        page = QWidget(self)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self._header = ConversationHeaderBar(page)
        layout.addWidget(self._header)
        self._controls = ConversationControls(page)
        layout.addWidget(self._controls)
        self._threads = QStackedWidget(page)
        self._thread_view = ThreadView(self._threads)
        self._email_view = EmailThreadView(self._threads)
        self._threads.addWidget(self._thread_view)
        self._threads.addWidget(self._email_view)
        layout.addWidget(self._threads, 1)
        self._email_view.retry_requested.connect(self._thread_view.retry_requested)
        self._thread_view.edit_requested.connect(self._edit)
        self._composer = Composer(page)
        layout.addWidget(self._composer)
        self.stack.addWidget(page)
        self._composer.set_enabled_for(False, "Open a conversation to reply")
        self._composer.editor.textChanged.connect(self._on_composer_text)
        return page

    @property
    def page(self) -> QWidget:
        return self._ensure_page()

    @property
    def header(self) -> ConversationHeaderBar:
        self._ensure_page()
        return self._header

    @property
    def controls(self) -> ConversationControls:
        self._ensure_page()
        return self._controls

    @property
    def threads(self) -> QStackedWidget:
        self._ensure_page()
        return self._threads

    @property
    def thread_view(self) -> ThreadView:
        self._ensure_page()
        return self._thread_view

    @property
    def email_view(self) -> EmailThreadView:
        self._ensure_page()
        return self._email_view

    @property
    def composer(self) -> Composer:
        self._ensure_page()
        return self._composer

    def _on_composer_text(self) -> None:
        if not self._loading:
            self._draft_timer.start()
            self._maybe_typing()

    def _maybe_typing(self) -> None:
        """A chat customer sees "agent is typing": one hint per 3 s of typing, no more."""
        cid = self.conversation_id
        if not cid or self.channel != "chat" or not self.composer.text().strip():
            return
        if self._typing_clock.isValid() and self._typing_clock.elapsed() < TYPING_EVERY_MS:
            return
        self._typing_clock.start()
        self.typing.emit(cid)

    def flush_draft(self) -> None:
        """Hand the composer's text to the engine now (debounce ended, or switching away)."""
        self._draft_timer.stop()
        if self.conversation_id:
            self.draft_changed.emit(self.conversation_id, self.composer.text())

    def _edit(self, body: str) -> None:
        """A refused message goes back to the composer, unless the agent is writing another."""
        if self.composer.text().strip():
            self.composer.error.setText("Finish or clear the current draft first.")
            self.composer.error.show()
            return
        self.composer.set_text(body)
        self.composer.editor.setFocus()

    def open(self, conversation_id: str | None) -> None:
        """Show another conversation (None: the placeholder). Keeps a draft per conversation."""
        if conversation_id == self.conversation_id:
            self.refresh()
            return
        if self._draft_timer.isActive():
            self.flush_draft()
        self._save_draft()
        self.conversation_id = conversation_id
        self._typing_clock.invalidate()
        self.composer.error.hide()
        text = ""
        if conversation_id:
            text = self._drafts.pop(conversation_id, "") or self.reader.draft(conversation_id)
        self._loading = True
        try:
            self.composer.set_text(text)
        finally:
            self._loading = False
        self.refresh()

    def _save_draft(self) -> None:
        if self.conversation_id and self.composer.text().strip():
            self._drafts[self.conversation_id] = self.composer.text()

    def _with_names(
        self, header: ConversationHeader, msgs: list[ThreadMessage]
    ) -> list[ThreadMessage]:
        """Authors arrive as ids (customer or agent): show the customer's name and "You"."""
        names: dict[str, str] = {}
        if header.customer_id:
            names[header.customer_id] = header.customer_name or "Customer"
        if self.my_agent:
            names[self.my_agent] = self.my_name or "You"
        if self.my_name:
            names.setdefault("me", self.my_name)
        return [
            dataclasses.replace(m, author=names[m.author]) if m.author in names else m for m in msgs
        ]

    def refresh(self) -> None:
        """Re-read the header and thread of the open conversation."""
        cid = self.conversation_id
        header = self.reader.header(cid) if cid else None
        if header is None:
            self.stack.setCurrentWidget(self.placeholder)
            if self._page is None:
                return  # nothing shown yet to clear
            self.thread_view.show_messages(None, [])
            self.controls.set_conversation(None, self.my_agent, agent_info(self.reader))
            self.composer.set_enabled_for(False, "Open a conversation to reply")
            return
        self.channel = header.channel
        self.header.show_header(header, self.my_agent)
        self.controls.set_conversation(header, self.my_agent, agent_info(self.reader))
        msgs = self._with_names(header, self.reader.thread(header.id))
        # The bubble model stays current for every channel (its menu, retry and status logic
        # are shared); an email thread is shown as rich text on top of it.
        self.thread_view.show_messages(cid, msgs)
        if header.channel == "email":
            self.email_view.show_thread(header.id, msgs, message_html(self.reader, header.id))
            self.threads.setCurrentWidget(self.email_view)
        else:
            self.threads.setCurrentWidget(self.thread_view)
        if header.status == "closed":
            self.composer.set_enabled_for(False, "This conversation is closed.")
        else:
            self.composer.set_enabled_for(True)
        self.stack.setCurrentWidget(self.page)
