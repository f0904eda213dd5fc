"""What each basic command does (accounts, calls, devices), on the engine thread.

Kept apart from `engine.py` (the loop and the library's life), `events.py` (what callbacks
trigger) and `features.py` (transfer, conference, recording) so each stays readable. Every
handler runs on the engine thread, returns the reply's result dict, or raises `EngineError`
whose message is shown to the agent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from softphone import numbers
from softphone.account import AccountSettings, SoftAccount, build_config
from softphone.calls import SoftCall, stream_stats
from softphone.errors import EngineError

if TYPE_CHECKING:
    from collections.abc import Callable

    from softphone.backend import AudioBackend
    from softphone.bridge import AudioBridge

log = logging.getLogger(__name__)


class CommandHandlers:
    """The basic `cmd_*` handlers; mixed into `Engine`."""

    if TYPE_CHECKING:
        accounts: dict[str, SoftAccount]
        calls: dict[str, SoftCall]
        bridge: AudioBridge | None
        backend: AudioBackend
        ep: Any

        def call_pj(self, fn: Callable[..., Any], *args: Any, what: str = "") -> Any: ...
        def emit_event(self, name: str, data: dict[str, Any]) -> None: ...
        def post(self, kind: str, data: dict[str, Any]) -> None: ...
        def later(self, delay: float, fn: Callable[[], None]) -> None: ...
        def check_stun_then(
            self, servers: tuple[str, ...], then: Callable[[], dict[str, Any]]
        ) -> dict[str, Any]: ...

        options: Any
        _on_incoming: Callable[[SoftAccount, int, str], None]

        def transport_for(self, kind: str) -> int: ...
        def update_network_targets(self) -> None: ...
        def new_call(self, acc: Any, call_id: int = -1) -> SoftCall: ...
        def stop(self) -> None: ...
        def _connect_media(self, c: SoftCall) -> None: ...
        def _update_ringer(self) -> None: ...

    # Accounts ----------------------------------------------------------------------------
    def cmd_register(
        self,
        user: str,
        domain: str,
        account: str = "default",
        password: str = "",
        auth_user: str = "",
        registrar: str | None = None,
        proxy: str = "",
        transport: str = "udp",
        display_name: str = "",
        expires: int = 300,
        auto_answer: bool = False,
        srtp: str = "off",
        stun_servers: list[str] | None = None,
        ice: bool = False,
        turn_server: str = "",
        turn_transport: str = "udp",
        turn_user: str = "",
        turn_password: str = "",
    ) -> dict[str, Any]:
        """Create the account and send REGISTER; the outcome arrives as `reg_state`."""
        if srtp not in ("off", "optional", "mandatory"):
            raise EngineError("bad_args", "srtp must be off, optional or mandatory")
        if turn_server and not ice:
            raise EngineError("bad_args", "a TURN server is used through ICE: set ice too")
        if turn_transport not in ("udp", "tcp", "tls"):
            raise EngineError("bad_args", "turn_transport must be udp, tcp or tls")
        stun = tuple(stun_servers or ())
        if not all(isinstance(x, str) and x.strip() for x in stun):
            raise EngineError("bad_args", "stun_servers must be a list of host[:port] strings")
        stun = tuple(x.strip() for x in stun)
        settings = AccountSettings(
            account,
            user,
            domain,
            password,
            auth_user,
            registrar,
            proxy,
            transport.lower(),
            display_name,
            int(expires),
            bool(auto_answer),
            srtp,
            stun,
            bool(ice),
            turn_server.strip(),
            turn_transport,
            turn_user,
            turn_password,
        )
        if stun:
            # PJSIP keeps one STUN list for the whole endpoint; the last register sets it.
            # The servers are asked first (the reply waits, the loop does not), so a dead
            # one is refused in words now instead of failing every call later.
            return self.check_stun_then(stun, lambda: self._register(settings))
        return self._register(settings)

    def _register(self, settings: AccountSettings) -> dict[str, Any]:
        log.info("register %r", settings)
        account = settings.name
        acc = self.add_account(settings)
        registering = bool(settings.registrar_uri())
        if registering:
            self.emit_event(
                "reg_state",
                {
                    "account": account,
                    "state": "Registering",
                    "code": 0,
                    "sip_reason": "",
                    "reason": "registering",
                    "expires": 0,
                },
            )
        return {
            "account": account,
            "uri": settings.id_uri,
            "registering": registering,
            "transport": acc.settings.transport,
            "stun_servers": list(settings.stun_servers),
            "ice": settings.ice,
            "turn_server": settings.turn_server,
        }

    def cmd_unregister(self, account: str = "default") -> dict[str, Any]:
        """Send REGISTER with expires 0; the account stays, so `register` again re-uses it."""
        acc = self._account(account)
        if acc.settings.registrar_uri():
            self.call_pj(acc.setRegistration, False, what="unregistering")
        return {"account": account}

    def add_account(self, settings: AccountSettings) -> SoftAccount:
        """Create an account (or re-configure the one with this name) and start registering.

        Replacing a live account by shutdown() + create() makes PJSIP refuse the new REGISTER
        with PJSIP_EBUSY while the old one's un-REGISTER is in flight; modify() re-registers.

        Raises:
            EngineError: PJSIP could not create the account or send the REGISTER.
        """
        cfg = build_config(
            settings,
            self.transport_for(settings.transport),
            self.options.rtp_port,
            self.options.rtp_range,
            self.options.bind,
        )
        acc = self.accounts.get(settings.name)
        if acc is not None:
            acc.settings = settings
            self.call_pj(acc.modify, cfg, what="changing the account")
        else:
            acc = SoftAccount(settings, self.post, self._on_incoming)
            self.call_pj(acc.create, cfg, True, what="creating the account")
            self.accounts[settings.name] = acc
        err = int(acc.getInfo().regLastErr)
        if err:
            raise EngineError(
                "sip_error", f"the REGISTER could not be sent: {self.ep.utilStrError(err)}"
            )
        self.update_network_targets()
        return acc

    # Calls -------------------------------------------------------------------------------
    def cmd_dial(
        self,
        to: str,
        account: str = "default",
        region: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start an outgoing call; progress arrives as `call_state` events."""
        acc = self._account(account)
        try:
            uri = numbers.to_sip_uri(str(to), acc.settings.domain, region)
        except numbers.NumberError as exc:
            raise EngineError("bad_args", str(exc)) from exc
        call = self.new_call(acc)
        prm = pj.CallOpParam(True)
        for name, value in (headers or {}).items():
            h = pj.SipHeader()
            h.hName, h.hValue = str(name), str(value)
            prm.txOption.headers.append(h)
        try:
            self.call_pj(call.makeCall, uri, prm, what=f"calling {uri}")
        except EngineError:
            self.calls.pop(call.key, None)
            raise
        return {"call": call.key, "uri": uri}

    def cmd_answer(self, call: str) -> dict[str, Any]:
        """Answer a ringing call with 200 OK."""
        c = self._call(call)
        prm = pj.CallOpParam(True)
        prm.statusCode = 200
        self.call_pj(c.answer, prm, what="answering")
        c.ringing_in = False
        self._update_ringer()
        return {"call": call}

    def cmd_decline(self, call: str, code: int = 486) -> dict[str, Any]:
        """Reject a ringing call (486 Busy Here by default; 603 Decline also common)."""
        c = self._call(call)
        prm = pj.CallOpParam(True)
        prm.statusCode = int(code)
        self.call_pj(c.hangup, prm, what="declining")
        return {"call": call}

    def cmd_hangup(self, call: str) -> dict[str, Any]:
        """End a call in any state (CANCEL, BYE or a final response as the state needs)."""
        c = self._call(call)
        self.call_pj(c.hangup, pj.CallOpParam(True), what="hanging up")
        return {"call": call}

    def cmd_hold(self, call: str) -> dict[str, Any]:
        """re-INVITE with a=sendonly; `media_state` confirms."""
        c = self._call(call)
        self.call_pj(c.setHold, pj.CallOpParam(True), what="holding")
        c.on_hold = True
        return {"call": call}

    def cmd_resume(self, call: str) -> dict[str, Any]:
        """re-INVITE with a=sendrecv (the UNHOLD flag)."""
        c = self._call(call)
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        self.call_pj(c.reinvite, prm, what="resuming")
        c.on_hold = False
        return {"call": call}

    def cmd_mute(self, call: str) -> dict[str, Any]:
        """Stop sending the microphone to this call (the far end hears silence)."""
        return self._set_mute(call, True)

    def cmd_unmute(self, call: str) -> dict[str, Any]:
        """Send the microphone again."""
        return self._set_mute(call, False)

    def cmd_stats(self, call: str) -> dict[str, Any]:
        """The call's quality figures now."""
        return self._quality(self._call(call))

    def cmd_status(self) -> dict[str, Any]:
        """Accounts and calls as the engine sees them (for a UI that restarted)."""
        return {
            "accounts": {n: a.last_state for n, a in self.accounts.items()},
            "calls": {k: {"hold": c.on_hold, "muted": c.muted} for k, c in self.calls.items()},
            "capturing": self.backend.capturing,
            "ringing": self.backend.ringing,
            "ringback": bool(self.bridge and self.bridge.ringback),
            "tone": self.bridge.tone if self.bridge else None,
        }

    # Devices -----------------------------------------------------------------------------
    def cmd_list_devices(self) -> dict[str, Any]:
        """Capture and playback devices as the backend sees them."""
        devs = self.backend.devices()
        return {kind: [d.to_dict() for d in lst] for kind, lst in devs.items()}

    def cmd_set_devices(
        self, capture: str | None = None, playback: str | None = None, ringer: str | None = None
    ) -> dict[str, Any]:
        """Choose devices by id or name; the reply says what is used."""
        return self.backend.select(capture, playback, ringer)

    def cmd_shutdown(self) -> dict[str, Any]:
        """Leave the loop; `stopped` follows once everything is destroyed."""
        self.stop()
        return {}

    # Helpers -----------------------------------------------------------------------------
    def _account(self, name: str) -> SoftAccount:
        acc = self.accounts.get(name)
        if acc is None:
            raise EngineError("not_found", f"no account {name!r}: register first")
        return acc

    def _call(self, key: str) -> SoftCall:
        c = self.calls.get(str(key))
        if c is None:
            raise EngineError("not_found", f"no call {key!r} (it may have ended)")
        return c

    def _set_mute(self, key: str, muted: bool) -> dict[str, Any]:
        c = self._call(key)
        c.muted = muted
        self._connect_media(c)
        return {"call": key, "muted": muted}

    def _quality(self, c: SoftCall) -> dict[str, Any]:
        out: dict[str, Any] = {"call": c.key}
        for idx in c.connected_slots:
            out.update(self.call_pj(stream_stats, c, idx, what="reading stats"))
            break
        if self.bridge is not None:
            out["audio"] = self.bridge.counters()
        return out

    def report_quality(self) -> None:
        """Periodic `quality` events for calls with audio flowing."""
        for c in list(self.calls.values()):
            if c.connected_slots:
                try:
                    self.emit_event("quality", self._quality(c))
                except EngineError as exc:
                    log.warning("no stats for %s: %s", c.key, exc)
