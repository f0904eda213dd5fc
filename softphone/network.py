"""Re-registering after a network change: told by the UI (`network_changed`) or noticed by
the engine's own watcher (softphone/netwatch.py), both ending in `Endpoint.handleIpChange`;
and checking the STUN servers a `register` names without stopping the loop meanwhile.

Mixed into `Engine`; every method here runs on the engine thread except that the watcher's
thread only posts (`_net_change`) what it saw.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from softphone.dispatch import DEFERRED
from softphone.errors import EngineError
from softphone.netwatch import Change, NetWatch, Target, parse_target

if TYPE_CHECKING:
    from collections.abc import Callable

    from softphone.account import SoftAccount
    from softphone.dispatch import Finish

log = logging.getLogger(__name__)

#: When PJSIP is still busy with the previous change (PJ_EBUSY), try again this much later,
#: a few times.
RETRY_S = 2.0
RETRIES = 5


class NetworkHandlers:
    """`cmd_network_changed`, the watcher's life, and what a detected change does."""

    if TYPE_CHECKING:
        accounts: dict[str, SoftAccount]
        ep: Any
        netwatch: NetWatch | None

        def call_pj(self, fn: Callable[..., Any], *args: Any, what: str = "") -> Any: ...
        def emit_event(self, name: str, data: dict[str, Any]) -> None: ...
        def post(self, kind: str, data: dict[str, Any]) -> None: ...
        def later(self, delay: float, fn: Callable[[], None]) -> None: ...
        def defer(self) -> Finish: ...

    _stun_check: tuple[tuple[str, ...], Finish, Callable[[], dict[str, Any]]] | None = None

    # STUN servers ----------------------------------------------------------------------
    def check_stun_then(
        self, servers: tuple[str, ...], then: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """Ask `servers` (asynchronously), then run `then` for the running command's reply.

        Why asynchronously: a STUN server that does not answer takes PJSIP 7.9 s of
        retransmissions to give up, and waiting for it on this thread held every other
        command, incoming call and re-registration for that long. The check answers in
        `on_stun_checked`; a dead server is refused in words, a live one becomes PJSIP's
        (endpoint-wide) STUN list and `then` registers.

        Raises:
            EngineError: a check is already running (code "invalid_state").
        """
        if self._stun_check is not None:
            raise EngineError(
                "invalid_state",
                "the phone is still checking the STUN server of the last registration; "
                "try again when it has answered",
            )
        self.call_pj(self.ep.natCheckStunServers, _vector(servers), False, None, what="STUN")
        self._stun_check = (servers, self.defer(), then)
        return DEFERRED

    def on_stun_checked(self, data: dict[str, Any]) -> None:
        """The STUN check ended: reply to the `register` that asked for it."""
        pending, self._stun_check = self._stun_check, None
        if pending is None:
            return
        servers, finish, then = pending
        status = int(data["status"])
        if status != 0:
            reason = str(self.ep.utilStrError(status))
            log.warning("no STUN server in %s answered: %s", list(servers), reason)

            def refuse() -> dict[str, Any]:
                raise EngineError(
                    "sip_error", f"no STUN server in {list(servers)} answered: {reason}"
                )

            finish(refuse)
            return

        def use() -> dict[str, Any]:
            log.info("STUN server %s answered", data["server"])
            # Not waiting: the server has just answered, and a call set up before PJSIP's
            # own resolution ends waits for it inside PJSIP.
            self.call_pj(self.ep.natUpdateStunServers, _vector(servers), False, what="setting STUN")
            return then()

        finish(use)

    def cancel_stun_check(self, why: str) -> None:
        """Answer a pending check's command with `why` (the engine is stopping)."""
        pending, self._stun_check = self._stun_check, None
        if pending is not None:

            def stopped() -> dict[str, Any]:
                raise EngineError("invalid_state", why)

            pending[1](stopped)

    # Network changes -------------------------------------------------------------------
    def cmd_network_changed(self, restart_listener: bool = False) -> dict[str, Any]:
        """The OS reports a new network (Wi-Fi change, VPN, wake from sleep): PJSIP drops the
        registration transports and re-registers every account; `reg_state` follows.

        `restart_listener` also re-binds the SIP listeners (a fixed --sip-port keeps its
        number; port 0 may get a new one).
        """
        self._handle_ip_change(restart_listener)
        return {"accounts": sorted(self.accounts)}

    def _handle_ip_change(self, restart_listener: bool = False) -> None:
        prm = pj.IpChangeParam()
        prm.restartListener = bool(restart_listener)
        self.call_pj(self.ep.handleIpChange, prm, what="handling the network change")

    def start_network_watch(self, interval: float) -> None:
        """Start watching routes and the clock (0 = do not watch; the UI must tell us)."""
        if interval <= 0:
            return
        self.netwatch = NetWatch(interval)
        self.netwatch.start(lambda change: self.post("_net_change", change.to_dict()))
        self.update_network_targets()

    def stop_network_watch(self) -> None:
        """Stop the watcher thread (before the library goes)."""
        if self.netwatch is not None:
            self.netwatch.stop()
            self.netwatch = None

    def update_network_targets(self) -> None:
        """Tell the watcher which servers the accounts talk to (after register)."""
        if self.netwatch is None:
            return
        targets: set[Target] = set()
        for acc in self.accounts.values():
            s = acc.settings
            tls = s.transport == "tls"
            for server in (s.registrar_uri(), s.proxy_uri()):
                target = parse_target(server, 5061 if tls else 5060)
                if target is not None:
                    targets.add(target)
        self.netwatch.set_targets(targets)

    def on_network_change(self, data: dict[str, Any]) -> None:
        """The watcher saw a change: re-register every account and tell the UI."""
        change = Change(data["reason"], data["detail"], data.get("routes", {}))
        if not self.accounts:
            return
        try:
            self._handle_ip_change()
        except EngineError as exc:
            attempt = int(data.get("attempt", 0)) + 1
            if attempt > RETRIES:
                self.emit_event("error", {"code": "sip_error", "message": str(exc)})
                return
            log.warning("network change not handled yet (%s): retrying", exc)
            self.later(RETRY_S, lambda: self.on_network_change({**data, "attempt": attempt}))
            return
        self.emit_event("network_change", {**change.to_dict(), "accounts": sorted(self.accounts)})


def _vector(servers: tuple[str, ...]) -> Any:
    vec = pj.StringVector()
    for server in servers:
        vec.append(server)
    return vec
