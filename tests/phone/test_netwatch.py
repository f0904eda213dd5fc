"""The engine re-registers by itself after a network change or a wake (softphone/netwatch.py).

The address change is real: Kamailio and the engine each run in a namespace of their own,
joined by a veth pair; the test moves the engine's address (as a new DHCP lease would) and
Kamailio must log a REGISTER from the new address. The wake detector is checked through
injected clocks: suspending this machine is not something a test can do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from softphone.netwatch import Clocks, NetWatch, parse_target
from tests.phone.conftest import USERS
from tests.phone.engine_peer import EnginePeer
from tests.phone.netns import Netns, link, namespaces
from tests.phone.peers import Kamailio
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone


class FakeClocks:
    """A monotonic clock and a suspend-counting one that the test moves by hand."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.boot = 5000.0

    def clocks(self) -> Clocks:
        return Clocks(monotonic=lambda: self.mono, with_suspend=lambda: self.boot)

    def tick(self, seconds: float, slept: float = 0.0) -> None:
        self.mono += seconds
        self.boot += seconds + slept


def _watch(routes: dict[str, str | None], clock: FakeClocks) -> NetWatch:
    w = NetWatch(interval=1, wake_gap=10, clocks=clock.clocks(), route=lambda h, p: routes[h])
    w.set_targets([(h, 5060) for h in routes])
    return w


def test_an_address_change_counts_once_it_is_stable() -> None:
    clock = FakeClocks()
    routes: dict[str, str | None] = {"pbx": "10.0.0.2"}
    w = _watch(routes, clock)
    assert w.check() is None  # baseline
    clock.tick(1)
    assert w.check() is None  # unchanged
    routes["pbx"] = None  # old address gone, new one not there yet
    clock.tick(1)
    assert w.check() is None
    clock.tick(1)
    assert w.check() is None  # no route anywhere: nothing could be sent
    routes["pbx"] = "10.0.0.3"
    clock.tick(1)
    assert w.check() is None  # seen once: may still be moving
    clock.tick(1)
    change = w.check()
    assert change is not None and change.reason == "address"
    assert "10.0.0.3" in change.detail and "was 10.0.0.2" in change.detail
    clock.tick(1)
    assert w.check() is None  # acted on: quiet again


def test_a_new_server_is_a_new_baseline_not_a_change() -> None:
    clock, routes = FakeClocks(), {"pbx": "10.0.0.2", "sbc": "10.0.0.2"}
    w = NetWatch(interval=1, clocks=clock.clocks(), route=lambda h, p: routes[h])
    w.set_targets([("pbx", 5060)])
    assert w.check() is None
    w.set_targets([("pbx", 5060), ("sbc", 5061)])
    for _ in range(3):
        clock.tick(1)
        assert w.check() is None


def test_a_wake_from_sleep_is_seen_from_the_clocks() -> None:
    clock = FakeClocks()
    routes: dict[str, str | None] = {"pbx": "10.0.0.2"}
    w = _watch(routes, clock)
    assert w.check() is None
    clock.tick(1, slept=5)  # under wake_gap: a slow poll, not a sleep
    assert w.check() is None
    clock.tick(1, slept=3600)
    change = w.check()
    assert change is not None and change.reason == "wake"
    assert "3600 s" in change.detail
    clock.tick(1)
    assert w.check() is None


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("sip:pbx.example;transport=tcp", ("pbx.example", 5061)),
        ("sip:10.1.2.3:5080;lr", ("10.1.2.3", 5080)),
        ("pbx.example:5070", ("pbx.example", 5070)),
        ("sips:[2001:db8::1]:5061", ("2001:db8::1", 5061)),
        ("", None),
    ],
)
def test_server_addresses_are_parsed(server: str, expected: tuple[str, int] | None) -> None:
    assert parse_target(server, 5061) == expected


@pytest.fixture
def two_namespaces() -> Iterator[tuple[Netns, Netns, str]]:
    """A registrar namespace (10.77.0.1) and an engine one (10.77.0.2) joined by veth."""
    with namespaces(2) as (pbx_ns, agent_ns):
        _, agent_if = link(pbx_ns, "10.77.0.1/24", agent_ns, "10.77.0.2/24")
        yield pbx_ns, agent_ns, agent_if


@pytest.mark.timeout(90)
def test_a_new_address_re_registers_without_the_ui(
    two_namespaces: tuple[Netns, Netns, str],
    engine_factory: Callable[..., EnginePeer],
    tmp_path: Path,
) -> None:
    pbx_ns, agent_ns, agent_if = two_namespaces
    workdir = tmp_path / "kamailio"
    workdir.mkdir()
    k = Kamailio(
        port=5060,
        domain="10.77.0.1:5060",
        users=USERS,
        workdir=workdir,
        host="10.77.0.1",
        netns=pbx_ns,
    )
    k.start()
    try:
        e = engine_factory(
            "alice",
            prefix=agent_ns.prefix,
            extra=["--bind", "0.0.0.0", "--net-poll", "0.5"],
        )
        e.request("register", user="alice", domain=k.domain, password=USERS["alice"])
        e.wait_event("reg_state", lambda d: d["state"] == "Registered", timeout=15)
        registers = lambda src: f"REGISTER sip:alice@10.77.0.1 from {src}:"  # noqa: E731
        wait_until(lambda: registers("10.77.0.2") in k.log_path.read_text(), what="REGISTER")
        wait_until(
            lambda: e.request("diag")["network"]["routes"] == {"10.77.0.1:5060": "10.77.0.2"},
            what="the watcher's first look at the route",
        )
        assert e.events("network_change") == []  # a steady network is left alone
        n = len(e.events("reg_state"))
        # A new lease: the old address goes, a new one comes (as DHCP or a Wi-Fi change does).
        agent_ns.ip("addr", "del", "10.77.0.2/24", "dev", agent_if)
        agent_ns.ip("addr", "add", "10.77.0.3/24", "dev", agent_if)
        change = e.wait_event("network_change", timeout=15)
        print("engine saw:", change)
        assert change["reason"] == "address" and change["accounts"] == ["default"]
        assert change["routes"] == {"10.77.0.1:5060": "10.77.0.3"}
        st = e.wait_event("reg_state", lambda d: d["state"] in ("Registered", "Failed"), after=n)
        assert st["state"] == "Registered", st
        wait_until(
            lambda: "contact <sip:alice@10.77.0.3:" in k.log_path.read_text(),
            timeout=15,
            what="Kamailio to see a REGISTER from and with the new address",
        )
        assert registers("10.77.0.3") in k.log_path.read_text()
        assert len(e.events("network_change")) == 1
    finally:
        k.stop()
