"""Email as bytes: parse what IMAP gives us, build what SMTP sends. No I/O here.

Parsing is strict about what would make a message unsafe or meaningless to an agent (no
sender, a multipart whose parts cannot be found) and lenient about the rest (an unknown
charset is decoded with replacement characters). Anything refused raises `MimeError` with a
short reason code, and the caller dead-letters the raw bytes. HTML bodies are sanitized with
`nh3` before anything stores them: no scripts, no event handlers, no styles, and no remote
images loaded (a remote image is a read receipt and a tracking pixel): only `cid:` inline
ones keep their `src`.
"""

from __future__ import annotations

import email
import email.policy
import html as html_lib
import logging
import re
import uuid
from dataclasses import dataclass, field
from email import errors as email_errors
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, getaddresses, localtime

import nh3

from router.channels.identities import email_address
from router.channels.inbound import Attachment

log = logging.getLogger(__name__)

_ID = re.compile(r"<([^<>\s]+)>")
_FATAL_DEFECTS = (
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.MultipartInvariantViolationDefect,
    email_errors.MissingHeaderBodySeparatorDefect,
)
_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "font": {"color"},
    "col": {"span"},
    "ol": {"start"},
}


class MimeError(Exception):
    """The message cannot be taken in; `reason` is a short code for the dead letter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass
class ParsedEmail:
    message_id: str
    """Without angle brackets; made from a hash of the bytes when the header is missing."""
    sender: str
    name: str
    subject: str
    text: str
    html: str | None
    references: list[str]
    """In-Reply-To and References ids, oldest first, without angle brackets."""
    attachments: list[Attachment] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Attachments not kept (over the limits), as lines for the agent."""


_REMOTE_SRC = re.compile(r'(<img\b[^>]*?) src="(https?://[^"]*)"', re.IGNORECASE)


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    if (
        tag == "img"
        and attribute == "src"
        and not value.lower().startswith(("cid:", "http://", "https://"))
    ):
        return None
    return value


def sanitize_html(markup: str) -> str:
    """Safe HTML for agents' eyes: see the module docstring. A remote image keeps its address
    as `data-remote-src` (never `src`), so an app can load it only when the agent asks."""
    clean = nh3.clean(
        markup,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "cid"},
        attribute_filter=_keep_attribute,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    # nh3's output is normalised (double-quoted attributes, escaped values), so this rename
    # is exact; a value it missed would still be a sanitized URL.
    return _REMOTE_SRC.sub(r'\1 data-remote-src="\2"', clean)


def html_to_text(markup: str) -> str:
    """A plain-text rendering of HTML for the body column (previews, search, plain clients)."""
    spaced = re.sub(r"(?i)<\s*(br|/p|/div|/tr|/li|/h\d)\b[^>]*>", "\n", markup)
    text = html_lib.unescape(nh3.clean(spaced, tags=set()))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def ids_in(value: str | None) -> list[str]:
    return _ID.findall(value or "")


def _text_of(part: MIMEPart) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, ValueError):
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        return raw.decode("utf-8", errors="replace")
    return content if isinstance(content, str) else ""


def parse(raw: bytes, max_attachment_bytes: int, max_attachments: int) -> ParsedEmail:
    """Parse one RFC 5322 message.

    Raises:
        MimeError: `bad_mime` (broken structure, no usable sender, undecodable).
    """
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return _parse(msg, raw, max_attachment_bytes, max_attachments)
    except MimeError:
        raise
    except (
        ValueError,
        TypeError,
        LookupError,
        IndexError,
        AttributeError,
        email_errors.MessageError,
    ) as exc:
        # The stdlib parser raises these on some broken headers and parts: the message is
        # refused with the reason, never dropped.
        raise MimeError("bad_mime", f"unparseable message: {type(exc).__name__}: {exc}") from exc


def _parse(
    msg: EmailMessage, raw: bytes, max_attachment_bytes: int, max_attachments: int
) -> ParsedEmail:
    defects = list(msg.defects)
    for part in msg.walk():
        defects.extend(part.defects)
    fatal = [d for d in defects if isinstance(d, _FATAL_DEFECTS)]
    if fatal:
        raise MimeError(
            "bad_mime",
            "broken MIME structure: " + ", ".join(sorted({type(d).__name__ for d in fatal})),
        )
    senders = getaddresses([str(v) for v in msg.get_all("from", [])])
    sender = email_address(senders[0][1]) if senders else None
    if sender is None:
        raise MimeError("bad_mime", "no usable From address")
    name = (senders[0][0] or sender.split("@")[0]).strip()
    message_id = next(iter(ids_in(str(msg.get("message-id", "")))), None)
    if message_id is None:
        message_id = f"{uuid.uuid5(uuid.NAMESPACE_OID, raw.hex()[:100000])}@missing-id"
    references = ids_in(str(msg.get("references", "")))
    for ref in ids_in(str(msg.get("in-reply-to", ""))):
        if ref not in references:
            references.append(ref)
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    html = sanitize_html(_text_of(html_part)).strip() if html_part is not None else None
    text = _text_of(text_part).strip() if text_part is not None else ""
    if not text and html:
        text = html_to_text(html)
    parsed = ParsedEmail(
        message_id=message_id,
        sender=sender,
        name=name,
        subject=str(msg.get("subject", "")).strip(),
        text=text,
        html=html,
        references=references,
    )
    for part in msg.iter_attachments():
        assert isinstance(part, EmailMessage)
        filename = part.get_filename() or "attachment"
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if len(data) > max_attachment_bytes:
            parsed.skipped.append(
                f"{filename} ({len(data)} bytes, over the {max_attachment_bytes}-byte limit)"
            )
        elif len(parsed.attachments) >= max_attachments:
            parsed.skipped.append(f"{filename} (over the {max_attachments}-attachment limit)")
        else:
            parsed.attachments.append(Attachment(filename, part.get_content_type(), data))
    if not parsed.text:
        parsed.text = parsed.subject or "(no text)"
    return parsed


def agent_body(parsed: ParsedEmail) -> str:
    """The plain body stored for agents, with a line per attachment not kept."""
    lines = [parsed.text]
    lines += [f"[attachment not kept: {s}]" for s in parsed.skipped]
    return "\n".join(lines)


def reply_subject(subject: str | None) -> str:
    subject = (subject or "").strip()
    if not subject:
        return "Your message"
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def build_reply(
    sender: str,
    to: str,
    subject: str | None,
    body: str,
    message_id: str,
    thread_ids: list[str],
    in_reply_to: str | None,
) -> EmailMessage:
    """An agent's reply: In-Reply-To the customer's last message, References the thread's
    ids in order ending with it (the first id and the last nineteen when longer)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = reply_subject(subject)
    msg["Date"] = format_datetime(localtime())
    msg["Message-ID"] = f"<{message_id}>"
    ids = [i for i in thread_ids if i != in_reply_to]
    if in_reply_to is not None:
        ids.append(in_reply_to)
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if ids:
        refs = ids if len(ids) <= 20 else [ids[0], *ids[-19:]]
        msg["References"] = " ".join(f"<{i}>" for i in refs)
    msg["Auto-Submitted"] = "no"
    msg.set_content(body)
    return msg
