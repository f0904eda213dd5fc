"""Channel settings: which channels are on, where their servers are, and their secrets.

Channels are opt-in: with none configured the router (embedded demo mode included) runs
exactly as before. Secrets (IMAP/SMTP passwords, the Twilio auth token) never come from
command-line flags, which any local user can read in the process list: they come from
environment variables or from a secrets file whose path is given on the command line. The
`Secret` wrapper keeps them out of reprs, so a logged config cannot leak them.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

ENV_IMAP_PASSWORD = "SWITCHBOARD_IMAP_PASSWORD"
ENV_SMTP_PASSWORD = "SWITCHBOARD_SMTP_PASSWORD"
ENV_TWILIO_TOKEN = "SWITCHBOARD_TWILIO_AUTH_TOKEN"
SECRET_KEYS = (ENV_IMAP_PASSWORD, ENV_SMTP_PASSWORD, ENV_TWILIO_TOKEN)


class ChannelConfigError(ValueError):
    """A channel setting is missing or wrong; the message names the flag or variable."""


class Secret:
    """A secret string that prints as `***` (reprs, f-strings, logs)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass
class EmailConfig:
    imap_host: str
    imap_port: int
    imap_user: str
    imap_password: Secret
    smtp_host: str
    smtp_port: int
    address: str
    """Our address: the From of replies and the domain of their Message-IDs."""
    smtp_user: str | None = None
    smtp_password: Secret | None = None
    mailbox: str = "INBOX"
    imap_ssl: bool = False
    smtp_starttls: bool = False
    poll_interval: float = 30.0
    queue: str = "support"
    max_bytes: int = 10 * 1024 * 1024
    """Larger emails go to the dead letters (headers kept) instead of the inbox."""
    max_attachment_bytes: int = 5 * 1024 * 1024
    max_attachments: int = 20


@dataclass
class SmsConfig:
    account_sid: str
    auth_token: Secret
    number: str
    """Our E.164 number: the From of replies."""
    api_base: str = "https://api.twilio.com"
    queue: str = "support"


@dataclass
class ChatConfig:
    queue: str = "support"


@dataclass
class ChannelsConfig:
    """What `--email-*`, `--sms-*`, `--chat*` and `--public-url` asked for."""

    email: EmailConfig | None = None
    sms: SmsConfig | None = None
    chat: ChatConfig | None = None
    public_url: str | None = None
    """The URL the outside world (Twilio) reaches this router at, when behind a proxy; the
    webhook signature covers the URL, so it must match what the provider was given."""

    @property
    def any(self) -> bool:
        return bool(self.email or self.sms or self.chat)

    def queues(self) -> list[str]:
        return [c.queue for c in (self.email, self.sms, self.chat) if c is not None]


def add_channel_args(parser: argparse.ArgumentParser) -> None:
    """The channel flags of `switchboard-router` (docs/channels.md)."""
    g = parser.add_argument_group("channels (docs/channels.md)")
    g.add_argument(
        "--channel-secrets",
        type=Path,
        default=None,
        help="file of KEY=VALUE secret lines (" + ", ".join(SECRET_KEYS) + ")",
    )
    g.add_argument(
        "--public-url",
        default=None,
        help="URL providers reach this router at (webhook signatures cover it)",
    )
    g.add_argument("--chat", action="store_true", help="serve the web chat widget at /chat")
    g.add_argument("--chat-queue", default="support")
    g.add_argument(
        "--email-address",
        default=None,
        help="our email address; turns email on (needs --imap-host, --smtp-host)",
    )
    g.add_argument("--email-queue", default="support")
    g.add_argument("--email-max-bytes", type=int, default=10 * 1024 * 1024)
    g.add_argument("--email-max-attachment-bytes", type=int, default=5 * 1024 * 1024)
    g.add_argument("--imap-host", default=None)
    g.add_argument("--imap-port", type=int, default=None, help="default 143, or 993 with SSL")
    g.add_argument("--imap-user", default=None)
    g.add_argument("--imap-ssl", action="store_true", help="IMAP over TLS (port 993)")
    g.add_argument("--imap-mailbox", default="INBOX")
    g.add_argument("--imap-poll", type=float, default=30.0, help="seconds between polls")
    g.add_argument("--smtp-host", default=None)
    g.add_argument("--smtp-port", type=int, default=25)
    g.add_argument("--smtp-user", default=None, help="log in to SMTP (password from secrets)")
    g.add_argument("--smtp-starttls", action="store_true")
    g.add_argument(
        "--sms-account-sid",
        default=None,
        help="Twilio account SID; turns SMS on (token from secrets)",
    )
    g.add_argument("--sms-number", default=None, help="our E.164 number")
    g.add_argument("--sms-api-base", default="https://api.twilio.com")
    g.add_argument("--sms-queue", default="support")


def read_secrets(path: Path | None, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Secrets from the environment, overridden by the secrets file (`KEY=VALUE` lines,
    `#` comments).

    Raises:
        ChannelConfigError: the file cannot be read or has a line that is not KEY=VALUE.
    """
    env = dict(os.environ if environ is None else environ)
    found = {k: env[k] for k in SECRET_KEYS if env.get(k)}
    if path is None:
        return found
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChannelConfigError(f"--channel-secrets {path}: {exc.strerror}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or key.strip() not in SECRET_KEYS:
            # Never echo the line: it may hold a secret.
            raise ChannelConfigError(
                f"--channel-secrets {path} line {number}: expected one of "
                f"{', '.join(SECRET_KEYS)}=VALUE"
            )
        found[key.strip()] = value.strip()
    return found


def channels_config(
    args: argparse.Namespace, environ: dict[str, str] | None = None
) -> ChannelsConfig:
    """Build the channel settings from parsed flags and the secrets.

    Raises:
        ChannelConfigError: a channel is half configured (the message says what is missing).
    """
    secrets = read_secrets(args.channel_secrets, environ)
    config = ChannelsConfig(public_url=(args.public_url or None))
    if args.chat:
        config.chat = ChatConfig(queue=args.chat_queue)
    if args.email_address:
        missing = [
            flag
            for flag, value in (
                ("--imap-host", args.imap_host),
                ("--imap-user", args.imap_user),
                ("--smtp-host", args.smtp_host),
            )
            if not value
        ]
        if ENV_IMAP_PASSWORD not in secrets:
            missing.append(ENV_IMAP_PASSWORD)
        if args.smtp_user and ENV_SMTP_PASSWORD not in secrets:
            missing.append(ENV_SMTP_PASSWORD)
        if missing:
            raise ChannelConfigError("email needs " + ", ".join(missing))
        smtp_password = secrets.get(ENV_SMTP_PASSWORD)
        config.email = EmailConfig(
            imap_host=args.imap_host,
            imap_port=args.imap_port or (993 if args.imap_ssl else 143),
            imap_user=args.imap_user,
            imap_password=Secret(secrets[ENV_IMAP_PASSWORD]),
            smtp_host=args.smtp_host,
            smtp_port=args.smtp_port,
            address=args.email_address,
            smtp_user=args.smtp_user,
            smtp_password=Secret(smtp_password) if smtp_password else None,
            mailbox=args.imap_mailbox,
            imap_ssl=args.imap_ssl,
            smtp_starttls=args.smtp_starttls,
            poll_interval=args.imap_poll,
            queue=args.email_queue,
            max_bytes=args.email_max_bytes,
            max_attachment_bytes=args.email_max_attachment_bytes,
        )
    if args.sms_account_sid:
        missing = [] if args.sms_number else ["--sms-number"]
        if ENV_TWILIO_TOKEN not in secrets:
            missing.append(ENV_TWILIO_TOKEN)
        if missing:
            raise ChannelConfigError("SMS needs " + ", ".join(missing))
        from router.channels.identities import e164

        number = e164(args.sms_number)
        if number is None:
            raise ChannelConfigError(f"--sms-number {args.sms_number!r} is not an E.164 number")
        config.sms = SmsConfig(
            account_sid=args.sms_account_sid,
            auth_token=Secret(secrets[ENV_TWILIO_TOKEN]),
            number=number,
            api_base=args.sms_api_base.rstrip("/"),
            queue=args.sms_queue,
        )
    return config
