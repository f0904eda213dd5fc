"""What each command and each callback does, on the engine thread.

Kept apart from `engine.py` (the loop and the library's life) so each stays readable. Every
handler runs on the engine thread, returns the reply's result dict, or raises `EngineError`
whose message is shown to the agent.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from softphone import numbers
from softphone.account import AccountSettings
from softphone.backend import AudioError
from softphone.calls import (
    DIRECTIONS,
    MEDIA_STATUS,
    SoftCall,
    auto_answer_after,
    display_name,
    stream_stats,
)
from softphone.errors import EngineError

if TYPE_CHECKING:
    from collections.abc import Callable

    from softphone.account import SoftAccount
    from softphone.backend import AudioBackend
    from softphone.bridge import AudioBridge

log = logging.getLogger(__name__)

#: Test-only: leak every ended call and a conference port (see _provoke_leak).
_PROVOKED_LEAK = os.environ.get("SWITCHBOARD_PROVOKE_LEAK") == "1"


class CommandHandlers:
    """The `cmd_*` handlers and posted-callback handling; mixed into `Engine`."""

    if TYPE_CHECKING:
        accounts: dict[str, SoftAccount]
        calls: dict[str, SoftCall]
        bridge: AudioBridge | None
        backend: AudioBackend
        ep: Any
        _leaked: list[tuple[Any, Any]]

        def call_pj(self, fn: Callable[..., Any], *args: Any, what: str = "") -> Any: ...
        def emit_event(self, name: str, data: dict[str, Any]) -> None: ...
        def post(self, kind: str, data: dict[str, Any]) -> None: ...
        def later(self, delay: float, fn: Callable[[], None]) -> None: ...
        def add_account(self, settings: AccountSettings) -> SoftAccount: ...
        def new_call(self, acc: Any, call_id: int = -1) -> SoftCall: ...
        def stop(self) -> None: ...
        def _send_next_info_digit(self, c: SoftCall) -> None: ...

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
    ) -> dict[str, Any]:
        """Create the account and send REGISTER; the outcome arrives as `reg_state`."""
        if srtp not in ("off", "optional", "mandatory"):
            raise EngineError("bad_args", "srtp must be off, optional or mandatory")
        stun = tuple(stun_servers or ())
        if not all(isinstance(x, str) and x.strip() for x in stun):
            raise EngineError("bad_args", "stun_servers must be a list of host[:port] strings")
        if stun:
            # PJSIP keeps one STUN list for the whole endpoint; the last register sets it.
            # Waiting resolves and probes it now, so a dead server is refused in words here
            # instead of failing every call later.
            servers = pj.StringVector()
            for x in stun:
                servers.append(x.strip())
            try:
                self.ep.natUpdateStunServers(servers, True)
            except pj.Error as exc:
                raise EngineError(
                    "sip_error", f"no STUN server in {list(stun)} answered: {exc.reason}"
                ) from exc
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
        )
        log.info("register %r", settings)
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
            "stun_servers": list(stun),
            "ice": bool(ice),
        }

    def cmd_unregister(self, account: str = "default") -> dict[str, Any]:
        """Send REGISTER with expires 0; the account stays, so `register` again re-uses it."""
        acc = self._account(account)
        if acc.settings.registrar_uri():
            self.call_pj(acc.setRegistration, False, what="unregistering")
        return {"account": account}

    def cmd_network_changed(self, restart_listener: bool = False) -> dict[str, Any]:
        """The OS reports a new network (Wi-Fi change, VPN, wake from sleep): PJSIP drops the
        registration transports and re-registers every account; `reg_state` follows.

        `restart_listener` also re-binds the SIP listeners (a fixed --sip-port keeps its
        number; port 0 may get a new one).
        """
        prm = pj.IpChangeParam()
        prm.restartListener = bool(restart_listener)
        self.call_pj(self.ep.handleIpChange, prm, what="handling the network change")
        return {"accounts": sorted(self.accounts)}

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

    # Posted callback data ----------------------------------------------------------------
    def handle_posted(self, kind: str, data: dict[str, Any]) -> None:
        """Act on what a callback copied out, now that the callback has returned."""
        if kind == "_incoming":
            self._incoming(data["call"], data["message"])
        elif kind == "_media":
            c = self.calls.get(data["call"])
            if c is not None and c.isActive():
                self._connect_media(c)
            self._update_ringer()
        elif kind == "_info_done":
            c = self.calls.get(data["call"])
            if c is not None:
                if data["code"] >= 300:
                    self.emit_event(
                        "error",
                        {
                            "code": "sip_error",
                            "call": c.key,
                            "message": "the far end refused a DTMF digit "
                            f"(SIP INFO {data['code']})",
                        },
                    )
                self._send_next_info_digit(c)
        elif kind == "transfer_state":
            self.emit_event(kind, data)
            c = self.calls.get(data["call"])
            if c is not None and data["final"] and 200 <= data["code"] < 300:
                log.info("transfer of %s succeeded: hanging up our leg", c.key)
                self.call_pj(c.hangup, pj.CallOpParam(True), what="ending the transferred call")
        elif kind == "call_state":
            self.emit_event("call_state", data)
            c = self.calls.get(data["call"])
            if c is not None and data["state"] in ("connecting", "confirmed", "disconnected"):
                c.ringing_in = c.ringing_out = False
            elif c is not None and data["state"] == "early" and data["role"] == "outgoing":
                c.ringing_out = data["code"] == 180
            if data["state"] == "disconnected":
                self._forget_call(data["call"])
            self._update_ringer()
        else:
            if kind == "dtmf":
                log.info("DTMF received on %s by %s", data["call"], data["method"])
            self.emit_event(kind, data)

    def _incoming(self, key: str, message: str) -> None:
        c = self.calls.get(key)
        if c is None:
            return
        ci = c.getInfo()
        after = auto_answer_after(message)
        acc = self.accounts.get(c.account_name)
        auto = after is not None and acc is not None and acc.settings.auto_answer
        self.emit_event(
            "incoming_call",
            {
                "call": key,
                "account": c.account_name,
                "from": str(ci.remoteUri),
                "from_name": display_name(str(ci.remoteUri)),
                "to": str(ci.localUri),
                "auto_answer_after": after,
                "will_auto_answer": auto,
            },
        )
        ringing = pj.CallOpParam(True)
        ringing.statusCode = 180
        self.call_pj(c.answer, ringing, what="sending 180 Ringing")
        c.ringing_in = True
        self._update_ringer()
        if auto:
            self.later(float(after or 0), lambda: self._auto_answer(key))

    def _update_ringer(self) -> None:
        """Alert the agent the right way for the moment:

        - an incoming call and no call in progress: the ringer device rings;
        - an incoming call while talking: a call-waiting beep in the headset (ringing the
          speakers would interrupt the conversation, and the agent wears the headset);
        - our call rings at the far end with no early media: ringback in the headset.

        A ringer that cannot be opened is told to the agent (the call still rings on screen).
        """
        calls = self.calls.values()
        in_call = any(c.connected_slots for c in calls)
        incoming = any(c.ringing_in for c in calls)
        tone = None
        if incoming and in_call:
            tone = "waiting"
        elif not in_call and any(c.ringing_out for c in calls):
            tone = "ringback"
        if self.bridge is not None:
            self.bridge.set_tone(tone)
        want = incoming and not in_call
        try:
            if want and not self.backend.ringing:
                self.backend.start_ringing()
            elif not want and self.backend.ringing:
                self.backend.stop_ringing()
        except AudioError as exc:
            self.emit_event("error", {"code": "audio_error", "message": f"cannot ring: {exc}"})

    def _auto_answer(self, key: str) -> None:
        c = self.calls.get(key)
        if c is not None and c.getInfo().state in (
            pj.PJSIP_INV_STATE_INCOMING,
            pj.PJSIP_INV_STATE_EARLY,
        ):
            log.info("auto-answering %s as the caller asked", key)
            self.cmd_answer(key)

    def _connect_media(self, c: SoftCall) -> None:
        """Connect or disconnect the call's audio to the headset per its media status."""
        if self.bridge is None:
            return
        ci = c.getInfo()
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = MEDIA_STATUS.get(mi.status, str(mi.status))
            if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                # Held by the far end: still play what it sends (music on hold), but the
                # microphone goes nowhere, so it is not opened for this call.
                media = c.getAudioMedia(mi.index)
                old_slot = c.connected_slots.get(mi.index)
                if old_slot is not None and old_slot != media.getPortId():
                    # PJSIP re-created the stream (hold, codec change): its old conference
                    # port is gone, forget it or the mic stays "needed" forever.
                    self.bridge.disconnect(None, old_slot, update=False)
                active = mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                self.bridge.connect(media, send_mic=active and not c.muted)
                c.connected_slots[mi.index] = media.getPortId()
            elif mi.index in c.connected_slots:
                slot = c.connected_slots.pop(mi.index)
                media = c.getAudioMedia(mi.index) if mi.audioConfSlot >= 0 else None
                self.bridge.disconnect(media, slot)
            self.emit_event(
                "media_state",
                {
                    "call": c.key,
                    "index": mi.index,
                    "status": status,
                    "direction": DIRECTIONS.get(mi.dir, str(mi.dir)),
                    "remote_direction": c.remote_direction,
                    "muted": c.muted,
                    "capturing": self.backend.capturing,
                },
            )

    def _forget_call(self, key: str) -> None:
        c = self.calls.pop(key, None)
        if c is None:
            return
        if _PROVOKED_LEAK:
            self._provoke_leak(c)
        c.recorder = None  # finishes a recording the agent did not stop
        for other in self.calls.values():
            other.conferenced.discard(key)
        if self.bridge is not None:
            for slot in c.connected_slots.values():
                self.bridge.disconnect(None, slot)
        c.connected_slots.clear()

    def _provoke_leak(self, call: Any) -> None:
        """Keep the ended call and a fresh conference port, on purpose: the soak test's sanity
        check (tests/phone/test_soak.py) measures what such a per-call leak costs, so its
        bound is one a real leak would exceed. Only with SWITCHBOARD_PROVOKE_LEAK=1."""
        fmt = pj.MediaFormatAudio()
        clock = self.bridge.clock_rate if self.bridge is not None else 16000
        fmt.init(pj.PJMEDIA_FORMAT_PCM, clock, 1, 20000, 16)
        port = pj.AudioMediaPort()
        port.createPort(f"leak-{call.key}", fmt)
        self._leaked.append((call, port))
