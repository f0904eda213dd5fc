"""Noticing a network change or a wake from sleep without help from the UI.

A laptop that changes Wi-Fi, joins a VPN or wakes up keeps a registration that points at an
address the PBX can no longer reach: calls to the agent fail until the next refresh (minutes).
PJSIP can recover (`Endpoint.handleIpChange`) but does not watch the network itself. This
module watches, in plain Python (no pjsua2, no Qt), and says when to call it:

- **the route to each registrar/proxy**: a UDP socket `connect()`ed to the server sends
  nothing but makes the OS choose the local source address of that route; when it changes
  (new DHCP lease, another interface, a VPN taking the route), the registration is stale.
  Portable (Linux, macOS, Windows), needs no interface enumeration, and watches exactly what
  matters. A changed address must be seen on two polls in a row before it counts, so one
  change that arrives in steps (address removed, then the new one added) re-registers once.
  While no server has a route at all (cable out) nothing is done: a REGISTER could not
  leave; the change is acted on when a route comes back.
- **sleep**: on wake the clock that counts suspended time (Linux `CLOCK_BOOTTIME`, elsewhere
  the wall clock) has run ahead of the monotonic one, which stops during suspend. A jump of
  more than `wake_gap` seconds between two polls means the machine slept.

The watcher runs on its own thread because name resolution can block for seconds; it only
posts what it saw to the engine, whose thread calls pjsua2. The UI's own `network_changed`
command (QNetworkInformation) stays: whichever notices first triggers the re-registration.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Target = tuple[str, int]  # host (name or address), port


def route_source(host: str, port: int) -> str | None:
    """The local address the OS would send from to reach host:port, or None (no route).

    No packet is sent: connect() on a UDP socket only picks the route.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return None
    for family, kind, proto, _, addr in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.connect(addr)
                return str(s.getsockname()[0])
        except OSError:
            continue
    return None


def _suspend_counting_clock() -> float:
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.time()


@dataclass(frozen=True)
class Clocks:
    """Two clocks: one that stops while the machine sleeps, one that does not."""

    monotonic: Callable[[], float] = time.monotonic
    with_suspend: Callable[[], float] = _suspend_counting_clock


@dataclass(frozen=True)
class Change:
    """What the watcher saw: `reason` is "address" or "wake"; `detail` says it in words."""

    reason: str
    detail: str
    routes: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the engine's `network_change` event."""
        return {"reason": self.reason, "detail": self.detail, "routes": dict(self.routes)}


def parse_target(server: str, default_port: int = 5060) -> Target | None:
    """host:port from "sip:host:port;params", "host:port", "[v6]:port" or "host"; None for ""."""
    s = server.strip()
    for prefix in ("sips:", "sip:"):
        if s.lower().startswith(prefix):
            s = s[len(prefix) :]
    s = s.split(";", 1)[0].split("@")[-1]
    if not s:
        return None
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif s.count(":") == 1:
        host, port = s.split(":")
    else:
        host, port = s, ""
    return host, int(port) if port.isdigit() else default_port


class NetWatch:
    """Polls routes and clocks; `check()` is one poll, `start()` runs it on a thread.

    Args:
        interval: seconds between polls.
        wake_gap: seconds of suspended time that count as a sleep.
        clocks: injectable for tests (a wake is then a jump of `with_suspend`).
        route: injectable `route_source`.
    """

    def __init__(
        self,
        interval: float = 3.0,
        wake_gap: float = 10.0,
        clocks: Clocks | None = None,
        route: Callable[[str, int], str | None] = route_source,
    ) -> None:
        self.interval = interval
        self.wake_gap = wake_gap
        self.clocks = clocks or Clocks()
        self._route = route
        self._lock = threading.Lock()
        self._targets: tuple[Target, ...] = ()
        self._acted: dict[str, str | None] | None = None  # routes the registrations use
        self._previous: dict[str, str | None] | None = None  # routes at the last poll
        self._last_clocks = self._read_clocks()
        self._stop = threading.Event()
        self._poke = threading.Event()  # set: poll now (new servers, or stopping)
        self._thread: threading.Thread | None = None

    def set_targets(self, targets: Iterable[Target]) -> None:
        """The servers whose routes matter (any thread): registrars and outbound proxies."""
        with self._lock:
            self._targets = tuple(sorted(set(targets)))
        self._poke.set()  # take the new baseline now, not an interval later

    @property
    def routes(self) -> dict[str, str | None]:
        """Server -> local address of its route, as the registrations last saw it."""
        with self._lock:
            return dict(self._acted or {})

    def _read_clocks(self) -> tuple[float, float]:
        return self.clocks.monotonic(), self.clocks.with_suspend()

    def check(self) -> Change | None:
        """One poll: a Change when the registrations should be renewed, else None."""
        mono, susp = self._read_clocks()
        last_mono, last_susp = self._last_clocks
        self._last_clocks = (mono, susp)
        slept = (susp - last_susp) - (mono - last_mono)
        with self._lock:
            targets = self._targets
        routes = {f"{h}:{p}": self._route(h, p) for h, p in targets}
        previous, self._previous = self._previous, routes
        if slept > self.wake_gap:
            self._set_acted(routes)
            return Change("wake", f"the computer slept for about {slept:.0f} s", routes)
        if self._acted is None or set(self._acted) != set(routes):
            self._set_acted(routes)  # first poll, or servers added/removed: a new baseline
            return None
        if routes == self._acted or routes != previous:
            return None  # unchanged, or still changing: wait for one more poll
        if not any(routes.values()):
            return None  # no route anywhere: nothing can be sent; wait for the network
        moved = [
            f"{t} from {routes[t] or 'nowhere'} (was {self._acted.get(t) or 'no route'})"
            for t in routes
            if routes[t] != self._acted.get(t)
        ]
        self._set_acted(routes)
        return Change("address", "the route to " + "; ".join(moved), routes)

    def _set_acted(self, routes: dict[str, str | None]) -> None:
        with self._lock:
            self._acted = routes

    def start(self, on_change: Callable[[Change], None]) -> None:
        """Poll every `interval` seconds on a daemon thread until `stop()`."""
        if self.interval <= 0 or self._thread is not None:
            return

        def loop() -> None:
            self._last_clocks = self._read_clocks()
            while True:
                self._poke.wait(self.interval)
                self._poke.clear()
                if self._stop.is_set():
                    return
                try:
                    change = self.check()
                except Exception:  # a bug here must not end the watching
                    log.exception("network check failed")
                    continue
                if change is not None:
                    log.info("network change (%s): %s", change.reason, change.detail)
                    on_change(change)

        self._thread = threading.Thread(target=loop, name="netwatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the thread (it never touches pjsua2)."""
        self._stop.set()
        self._poke.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
