"""Real peers for the channel tests, all on 127.0.0.1 and free ports, all stopped at the end.

- `Dovecot`: a real IMAP server (Debian's dovecot-imapd) run in the foreground with a config,
  a passwd-file and Maildirs in a temporary directory. Mail is delivered with IMAP APPEND.
  The master runs as root (the test suite does); mail is owned by the `dovecot` user, since
  Dovecot refuses UID 0 for mail access, so its directory lives outside pytest's 0700 tmp.
- `SmtpSink`: a real SMTP server (`aiosmtpd`) that keeps every message it is given.
- `TwilioStandIn`: the only fake, for the SMS provider's cloud: it speaks Twilio's wire format
  (Messages REST API with basic auth, JSON answers with `sid`/`status`) and signs the
  webhooks and status callbacks it sends the router as Twilio does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import imaplib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.wait import deadline, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- IMAP


class Dovecot:
    """`dovecot -F` with one user; a context manager."""

    def __init__(self, user: str = "support") -> None:
        self.user = user
        self.password = uuid.uuid4().hex
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="switchboard-dovecot-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        d = self.dir
        os.chmod(d, 0o755)
        mail_user = pwd.getpwnam("dovecot")
        for sub in ("run", "state", "home", "mail"):
            (d / sub).mkdir()
        for sub in ("home", "mail"):
            os.chown(d / sub, mail_user.pw_uid, mail_user.pw_gid)
        (d / "passwd").write_text(
            f"{self.user}:{{PLAIN}}{self.password}:{mail_user.pw_uid}:{mail_user.pw_gid}::"
            f"{d / 'home'}::\n"
        )
        conf = d / "dovecot.conf"
        conf.write_text(f"""
base_dir = {d / "run"}
state_dir = {d / "state"}
log_path = {d / "dovecot.log"}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:{d / "mail"}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d / "passwd"}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d / "passwd"}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")
        return conf

    def start(self) -> Dovecot:
        """Start and wait until a login works.

        Raises:
            RuntimeError: dovecot is missing or did not come up (its log is included).
        """
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(binary).exists():
            raise RuntimeError("dovecot is not installed (scripts/apt-test.txt lists it)")
        self.proc = subprocess.Popen(
            [binary, "-F", "-c", str(self._config())],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def logs_in() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited:\n{self.log()}")
            try:
                with self.connect():
                    return True
            except (OSError, imaplib.IMAP4.error):
                return False

        wait_until(logs_in, timeout=15, interval=0.05, what="dovecot to accept a login")
        return self

    def log(self) -> str:
        with contextlib.suppress(FileNotFoundError):
            return (self.dir / "dovecot.log").read_text(errors="replace")[-4000:]
        return ""

    @contextlib.contextmanager
    def connect(self) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            conn.login(self.user, self.password)
            conn.select("INBOX")
            yield conn
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()

    def append(self, raw: bytes) -> None:
        """Deliver a message to the INBOX (IMAP APPEND, unseen)."""
        with self.connect() as conn:
            typ, data = conn.append("INBOX", None, None, raw)
            assert typ == "OK", data

    def unseen(self) -> int:
        with self.connect() as conn:
            typ, data = conn.uid("SEARCH", "UNSEEN")
            assert typ == "OK", data
            return len((data[0] or b"").split())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(deadline(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------- SMTP


class _Keep:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
    ) -> str:
        content = envelope.original_content or b""
        with self.sink.cond:
            self.sink.messages.append(
                {"from": envelope.mail_from, "to": envelope.rcpt_tos, "raw": content}
            )
            self.sink.cond.notify_all()
        return "250 OK"


class SmtpSink:
    """An aiosmtpd server on a free loopback port that keeps what it receives; with `login`
    (user, password) it requires SMTP AUTH (over plain TCP: loopback only)."""

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.messages: list[dict[str, Any]] = []
        self.logins: list[str] = []
        self.cond = threading.Condition()
        self.login = login
        options: dict[str, Any] = {}
        if login is not None:
            options = {
                "auth_required": True,
                "auth_require_tls": False,
                "authenticator": self._authenticate,
            }
        self.controller = Controller(_Keep(self), hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.login is not None
            and (data.login.decode(), data.password.decode()) == self.login
        )
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The first `count` messages, parsed, once they have arrived.

        Raises:
            TimeoutError: fewer arrived within the scaled timeout.
        """
        end = time.monotonic() + deadline(timeout)
        with self.cond:
            while len(self.messages) < count:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.messages)} of {count} mails arrived")
                self.cond.wait(left)
            out = []
            for m in self.messages[:count]:
                parsed = message_from_bytes(m["raw"], policy=policy.default)
                assert isinstance(parsed, EmailMessage)
                out.append(parsed)
            return out


# ---------------------------------------------------------------------- Twilio


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """As Twilio computes `X-Twilio-Signature` for a form POST (written here independently
    of the router's code, from Twilio's documented algorithm)."""
    payload = url + "".join(key + params[key] for key in sorted(params))
    mac = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


class TwilioStandIn:
    """Twilio's Messages API on loopback: records the messages the router sends."""

    def __init__(self, account_sid: str, token: str) -> None:
        self.account_sid = account_sid
        self.token = token
        self.sent: list[dict[str, str]] = []
        self.refused: list[int] = []
        self.refuse_with: dict[str, Any] | None = None
        """When set, the next message is refused with this Twilio error body."""
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                stand_in._post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TwilioStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _post(self, handler: BaseHTTPRequestHandler) -> None:
        path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.token}".encode()).decode()
        length = int(handler.headers.get("Content-Length", "0"))
        form = dict(parse_qsl(handler.rfile.read(length).decode()))
        if handler.path != path:
            self._reply(handler, 404, {"code": 20404, "message": "not found", "status": 404})
        elif handler.headers.get("Authorization") != expected:
            with self.lock:
                self.refused.append(401)
            self._reply(handler, 401, {"code": 20003, "message": "Authenticate", "status": 401})
        elif self.refuse_with is not None:
            body, self.refuse_with = self.refuse_with, None
            self._reply(handler, int(body["status"]), body)
        elif not form.get("To") or not form.get("From") or "Body" not in form:
            self._reply(
                handler,
                400,
                {"code": 21604, "message": "A 'To' phone number is required.", "status": 400},
            )
        else:
            sid = "SM" + uuid.uuid4().hex
            with self.lock:
                self.sent.append({**form, "MessageSid": sid})
            self._reply(
                handler,
                201,
                {
                    "sid": sid,
                    "status": "queued",
                    "to": form["To"],
                    "from": form["From"],
                    "body": form["Body"],
                    "account_sid": self.account_sid,
                    "num_segments": "1",
                },
            )

    def post_signed(
        self, url: str, params: dict[str, str], signature: str | None = None
    ) -> httpx.Response:
        """POST a form to the router as Twilio does (signed with the auth token unless a
        `signature` is given)."""
        sig = twilio_signature(self.token, url, params) if signature is None else signature
        return httpx.post(url, data=params, headers={"X-Twilio-Signature": sig}, timeout=10)

    def inbound(
        self, router_url: str, sender: str, body: str, sid: str | None = None
    ) -> httpx.Response:
        params = {
            "MessageSid": sid or "SM" + uuid.uuid4().hex,
            "SmsSid": "",
            "AccountSid": self.account_sid,
            "MessagingServiceSid": "",
            "From": sender,
            "To": "+14155550100",
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "FromCountry": "US",
            "ToCountry": "US",
            "ApiVersion": "2010-04-01",
        }
        params["SmsSid"] = params["MessageSid"]
        return self.post_signed(f"{router_url}/channels/sms/inbound", params)

    def status_callback(self, message: dict[str, str], status: str) -> httpx.Response:
        """Send the status callback Twilio would send for a message the router created."""
        params = {
            "MessageSid": message["MessageSid"],
            "SmsSid": message["MessageSid"],
            "MessageStatus": status,
            "SmsStatus": status,
            "AccountSid": self.account_sid,
            "From": message["From"],
            "To": message["To"],
            "ApiVersion": "2010-04-01",
        }
        return self.post_signed(message["StatusCallback"], params)
