"""Registration against a real Kamailio with digest auth."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.phone.conftest import USERS
from tests.phone.engine_peer import EnginePeer
from tests.phone.peers import Kamailio, free_port

pytestmark = pytest.mark.phone


def test_register_with_the_right_password_is_registered(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer]
) -> None:
    e = engine_factory("alice")
    r = e.request("register", user="alice", domain=kamailio.domain, password=USERS["alice"])
    assert r["registering"] is True
    assert e.wait_event("reg_state")["state"] == "Registering"
    st = e.wait_event("reg_state", lambda d: d["state"] != "Registering")
    assert st["state"] == "Registered", st
    assert st["code"] == 200 and st["expires"] > 0


def test_wrong_password_is_refused_with_the_reason_in_words(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer]
) -> None:
    e = engine_factory("alice")
    e.request("register", user="alice", domain=kamailio.domain, password="not-the-password")
    st = e.wait_event("reg_state", lambda d: d["state"] != "Registering")
    assert st["state"] == "Failed"
    assert st["code"] in (401, 403, 407)
    assert "user name or password" in st["reason"]
    assert "not-the-password" not in e.log_text()


def test_reregister_after_unregister_and_with_tcp(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer]
) -> None:
    e = engine_factory("bob")
    e.request("register", user="bob", domain=kamailio.domain, password=USERS["bob"])
    e.wait_event("reg_state", lambda d: d["state"] == "Registered")
    e.request("unregister")
    e.wait_event("reg_state", lambda d: d["state"] == "Unregistered")
    n = len(e.events("reg_state"))
    e.request(
        "register", user="bob", domain=kamailio.domain, password=USERS["bob"], transport="tcp"
    )
    st = e.wait_event("reg_state", lambda d: d["state"] in ("Registered", "Failed"), after=n)
    assert st["state"] == "Registered", st


def test_a_network_change_re_registers(
    kamailio: Kamailio, engine_factory: Callable[..., EnginePeer]
) -> None:
    e = engine_factory("carol")
    e.request("register", user="carol", domain=kamailio.domain, password=USERS["carol"])
    e.wait_event("reg_state", lambda d: d["state"] == "Registered")
    n = len(e.events("reg_state"))
    assert e.request("network_changed")["accounts"] == ["default"]
    st = e.wait_event("reg_state", lambda d: d["state"] in ("Registered", "Failed"), after=n)
    assert st["state"] == "Registered", st


def test_an_unreachable_registrar_is_said_in_words(
    engine_factory: Callable[..., EnginePeer],
) -> None:
    port = free_port()  # nothing listens there: TCP connect is refused at once
    e = engine_factory("alice")
    e.request("register", user="alice", domain=f"127.0.0.1:{port}", password="x", transport="tcp")
    st = e.wait_event("reg_state", lambda d: d["state"] != "Registering", timeout=20)
    assert st["state"] == "Failed"
    assert st["code"] in (408, 502, 503), st
    assert "could not be reached" in st["reason"] or "did not answer" in st["reason"]
