"""router.auth: scrypt passwords, hashed expiring tokens, bearer header parsing."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from router.auth import Authenticator, AuthError, bearer_token, hash_password, verify_password
from router.storage import Storage


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def storage() -> Iterator[Storage]:
    storage = Storage(":memory:")
    with storage.transaction():
        storage.upsert_agent(
            "a-ana", "ana", "Ana", hash_password("s3cret"), ["support"], {"chat": 3}, 0.0
        )
    yield storage
    storage.close()


def test_password_hash_is_salted_and_verifies() -> None:
    # A password long and odd enough that it cannot turn up in base64 salt or digest by
    # chance (a two-letter one did, one run in a few hundred).
    secret = "correct horse battery staple!"
    first, second = hash_password(secret), hash_password(secret)
    assert first != second and first.startswith("scrypt$") and secret not in first
    assert verify_password(secret, first) and verify_password(secret, second)
    assert not verify_password(secret.upper(), first)
    assert not verify_password(secret, "md5$abc")


def test_login_issues_a_token_stored_only_as_a_digest(storage: Storage) -> None:
    auth = Authenticator(storage, Clock(), token_ttl=60)
    login = auth.login("ana", "s3cret")
    assert login.agent == {
        "id": "a-ana",
        "name": "Ana",
        "queues": ["support"],
        "capacity": {"chat": 3},
        "skills": {},
        "supervises": [],
    }
    assert login.expires_at == 5060.0
    stored = [r[0] for r in storage.conn.execute("SELECT token_hash FROM tokens")]
    assert len(stored) == 1 and stored[0] != login.token and login.token not in stored[0]
    assert auth.agent_for_token(login.token)["id"] == "a-ana"


def test_login_on_the_event_loop_hashes_off_it_and_issues_the_same_token(
    storage: Storage,
) -> None:
    auth = Authenticator(storage, Clock(), token_ttl=60)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    real_scrypt = hashlib.scrypt

    def scrypt(*args: Any, **kwargs: Any) -> bytes:
        seen.append(threading.get_ident())
        return real_scrypt(*args, **kwargs)

    hashlib.scrypt = scrypt  # type: ignore[assignment]
    try:
        login = asyncio.run(auth.login_async("ana", "s3cret"))
        with pytest.raises(AuthError) as err:
            asyncio.run(auth.login_async("ana", "wrong"))
    finally:
        hashlib.scrypt = real_scrypt
    assert err.value.code == "bad_credentials"
    assert auth.agent_for_token(login.token)["id"] == "a-ana"
    assert seen and loop_thread not in seen  # every scrypt ran on a worker thread


@pytest.mark.parametrize("username, password", [("ana", "nope"), ("bob", "s3cret")])
def test_wrong_credentials_are_refused_alike(
    storage: Storage, username: str, password: str
) -> None:
    with pytest.raises(AuthError) as info:
        Authenticator(storage, Clock(), 60).login(username, password)
    assert info.value.code == "bad_credentials"
    assert info.value.message == "Wrong username or password."


def test_tokens_expire_and_unknown_tokens_are_unauthorized(storage: Storage) -> None:
    clock = Clock()
    auth = Authenticator(storage, clock, token_ttl=60)
    token = auth.login("ana", "s3cret").token
    clock.now += 59.9
    assert auth.agent_for_token(token)["id"] == "a-ana"
    clock.now += 0.1
    with pytest.raises(AuthError) as info:
        auth.agent_for_token(token)
    assert info.value.code == "token_expired"
    for bad in (None, "", "made-up"):
        with pytest.raises(AuthError) as info:
            auth.agent_for_token(bad)
        assert info.value.code == "unauthorized"


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
