"""`router.channels.email_mime`: parsing, sanitizing and building mail, on plain bytes."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from router.channels.email_mime import (
    MimeError,
    build_reply,
    html_to_text,
    ids_in,
    parse,
    reply_subject,
    sanitize_html,
)


def _raw(**headers: str) -> bytes:
    msg = EmailMessage()
    for key, value in headers.items():
        msg[key.replace("_", "-")] = value
    msg.set_content("plain text")
    return msg.as_bytes()


def test_sanitize_drops_scripts_handlers_styles_and_remote_images() -> None:
    clean = sanitize_html(
        "<div onclick='x()'><script>bad()</script><style>p{}</style><b>hi</b>"
        "<img src='https://t.example/p.gif'><img src='cid:logo@x' alt='logo'>"
        "<a href='https://ok.example/'>ok</a><a href='javascript:bad()'>no</a>"
        "<iframe src='https://x'></iframe></div>"
    )
    assert "<b>hi</b>" in clean
    assert '<img src="cid:logo@x" alt="logo">' in clean
    assert 'href="https://ok.example/"' in clean and "noopener" in clean
    assert '<img data-remote-src="https://t.example/p.gif">' in clean
    for bad in ("script", "bad()", "onclick", ' src="https', "iframe", "javascript", "p{}"):
        assert bad not in clean
    assert "src" not in sanitize_html("<img src='data:image/png;base64,AAAA'>")


def test_html_to_text_keeps_line_breaks_and_entities() -> None:
    assert html_to_text("<p>Fish &amp; chips</p><p>second<br>line</p>") == (
        "Fish & chips\nsecond\nline"
    )


def test_parse_reads_sender_ids_and_references_in_order() -> None:
    raw = _raw(
        From="Zoë <Zoe@Example.COM>",
        Subject="Hi",
        Message_ID="<m3@x>",
        References="<m1@x> <m2@x>",
        In_Reply_To="<m2@x>",
    )
    parsed = parse(raw, 1000, 5)
    assert (parsed.sender, parsed.name, parsed.message_id) == ("zoe@example.com", "Zoë", "m3@x")
    assert parsed.references == ["m1@x", "m2@x"]
    assert parsed.text == "plain text" and parsed.html is None


def test_parse_html_only_mail_gets_a_text_body() -> None:
    msg = EmailMessage()
    msg["From"] = "a@b.example"
    msg.set_content("<p>Only <i>HTML</i></p>", subtype="html")
    parsed = parse(msg.as_bytes(), 1000, 5)
    assert parsed.text == "Only HTML"
    assert parsed.html == "<p>Only <i>HTML</i></p>"


def test_attachments_over_the_limits_are_listed_not_kept() -> None:
    msg = EmailMessage()
    msg["From"] = "a@b.example"
    msg.set_content("see files")
    msg.add_attachment(b"x" * 10, maintype="text", subtype="plain", filename="small.txt")
    msg.add_attachment(b"x" * 500, maintype="application", subtype="zip", filename="big.zip")
    msg.add_attachment(b"y", maintype="text", subtype="plain", filename="third.txt")
    parsed = parse(msg.as_bytes(), 100, 1)
    assert [a.filename for a in parsed.attachments] == ["small.txt"]
    assert parsed.skipped == [
        "big.zip (500 bytes, over the 100-byte limit)",
        "third.txt (over the 1-attachment limit)",
    ]


@pytest.mark.parametrize(
    "raw, detail",
    [
        (b"Subject: no sender\r\n\r\nbody\r\n", "no usable From address"),
        (b"From: not an address\r\n\r\nbody\r\n", "no usable From address"),
        (
            b"From: a@b.example\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n",
            "NoBoundaryInMultipartDefect",
        ),
        (
            b"From: a@b.example\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--x\r\n\r\n",
            "StartBoundaryNotFoundDefect",
        ),
    ],
)
def test_broken_mail_is_refused_with_a_reason(raw: bytes, detail: str) -> None:
    with pytest.raises(MimeError) as caught:
        parse(raw, 1000, 5)
    assert caught.value.reason == "bad_mime"
    assert detail in caught.value.detail


def test_a_mail_without_message_id_gets_a_stable_one() -> None:
    raw = b"From: a@b.example\r\n\r\nbody\r\n"
    assert parse(raw, 10, 1).message_id == parse(raw, 10, 1).message_id
    assert parse(raw, 10, 1).message_id.endswith("@missing-id")


def test_reply_headers_thread_to_the_customer_message() -> None:
    msg = build_reply(
        "us@x.example",
        "them@y.example",
        "Help",
        "Hello",
        "r2@x.example",
        ["c1@y", "r1@x.example", "c2@y"],
        "c2@y",
    )
    assert msg["Subject"] == "Re: Help"
    assert msg["Message-ID"] == "<r2@x.example>"
    assert msg["In-Reply-To"] == "<c2@y>"
    assert ids_in(msg["References"]) == ["c1@y", "r1@x.example", "c2@y"]
    long = build_reply("us@x", "t@y", "Re: x", "b", "n@x", [f"{i}@y" for i in range(30)], "29@y")
    assert ids_in(long["References"]) == ["0@y", *[f"{i}@y" for i in range(11, 30)]]
    assert reply_subject("RE: done") == "RE: done" and reply_subject(None) == "Your message"
