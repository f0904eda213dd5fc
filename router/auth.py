"""Agent passwords and login tokens.

Passwords are stored as scrypt hashes with a per-agent salt, so a copied database does not give
away passwords. Tokens are random and stored only as SHA-256 digests (they are high-entropy, so
a fast hash is enough), so a copied database does not give away sessions either. Tokens expire;
an expired token is told apart from an unknown one because the client words them differently.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from router.config import Clock
from router.storage import Storage

log = logging.getLogger(__name__)

_N, _R, _P = 2**14, 8, 1


class AuthError(Exception):
    """Authentication refused. `code` is `bad_credentials`, `unauthorized` or
    `token_expired` (docs/protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a `hash_password` string (an empty one,
    an agent from the config without a password yet, never matches)."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        log.error("stored password hash has an unknown format")
        return False
    if scheme != "scrypt":
        log.error("stored password hash uses unknown scheme %r", scheme)
        return False
    want = base64.urlsafe_b64decode(digest)
    got = hashlib.scrypt(
        password.encode("utf-8"),
        salt=base64.urlsafe_b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(want),
    )
    return hmac.compare_digest(got, want)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def agent_public(agent: dict[str, Any]) -> dict[str, Any]:
    """What the agent and the wire see of an agent row (never the password hash)."""
    return {
        "id": agent["id"],
        "name": agent["name"],
        "queues": list(agent["queues"]),
        "capacity": dict(agent["capacity"]),
        "skills": dict(agent.get("skills") or {}),
        "supervises": list(agent.get("supervises") or []),
    }


@dataclass(frozen=True)
class Login:
    token: str
    agent: dict[str, Any]
    expires_at: float


class Authenticator:
    """Logs agents in and resolves bearer tokens against `Storage`."""

    def __init__(self, storage: Storage, clock: Clock, token_ttl: float) -> None:
        self.storage = storage
        self.clock = clock
        self.token_ttl = token_ttl
        self._dummy_hash = hash_password(secrets.token_urlsafe(16))

    def login(self, username: str, password: str) -> Login:
        """Check the password and issue a new token.

        Raises:
            AuthError: `bad_credentials` for an unknown user or a wrong password (one message
                for both, so the endpoint does not reveal which usernames exist).
        """
        agent = self.storage.agent_by_username(username)
        # Hash even for an unknown user so the answer takes the same time.
        ok = verify_password(password, agent["password_hash"] if agent else self._dummy_hash)
        return self._finish(username, agent, ok)

    async def login_async(self, username: str, password: str) -> Login:
        """`login` for the event loop: scrypt (~50 ms) runs in a worker thread, so one login
        does not stall every agent's websocket; the database stays on the loop's thread.

        Raises:
            AuthError: as `login`.
        """
        agent = self.storage.agent_by_username(username)
        stored = agent["password_hash"] if agent else self._dummy_hash
        ok = await asyncio.to_thread(verify_password, password, stored)
        return self._finish(username, agent, ok)

    def _finish(self, username: str, agent: Any, ok: bool) -> Login:
        """Refuse, or issue and store a new token (on the database's thread)."""
        if agent is None or not ok:
            log.info("login refused for username %r", username)
            raise AuthError("bad_credentials", "Wrong username or password.")
        now = self.clock()
        token = secrets.token_urlsafe(32)
        expires_at = now + self.token_ttl
        with self.storage.transaction():
            self.storage.add_token(_token_hash(token), agent["id"], now, expires_at)
            # Expired tokens are kept for a day so a client hears "expired", not "unknown".
            self.storage.prune_tokens(now - 86400)
        log.info("agent %s logged in", agent["id"])
        return Login(token, agent_public(agent), expires_at)

    def agent_for_token(self, token: str | None) -> dict[str, Any]:
        """The agent row a bearer token belongs to.

        Raises:
            AuthError: `unauthorized` (missing or unknown token) or `token_expired`.
        """
        if not token:
            raise AuthError("unauthorized", "Log in first: no bearer token was sent.")
        row = self.storage.token(_token_hash(token))
        if row is None:
            raise AuthError("unauthorized", "This login is not valid; log in again.")
        if row["expires_at"] <= self.clock():
            raise AuthError("token_expired", "Your login has expired; log in again.")
        agent = self.storage.agent(row["agent_id"])
        if agent is None:
            raise AuthError("unauthorized", "This agent no longer exists.")
        return agent


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
