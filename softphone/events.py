"""What the engine does with data that callbacks posted: calls arriving, media coming and
going, the ringer and headset tones, a call's end.

Apart from `handlers.py` (what each command does) because these run when PJSIP says so, not
when the agent asks. Like the commands, every method runs on the engine thread, after the
callback that posted the data has returned (a Call must not be deleted inside its own
callback).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from softphone.backend import AudioError
from softphone.calls import DIRECTIONS, MEDIA_STATUS, SoftCall, auto_answer_after, display_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from softphone.account import SoftAccount
    from softphone.backend import AudioBackend
    from softphone.bridge import AudioBridge

log = logging.getLogger(__name__)

#: Test-only: leak every ended call and a conference port (see _provoke_leak).
_PROVOKED_LEAK = os.environ.get("SWITCHBOARD_PROVOKE_LEAK") == "1"


class CallEvents:
    """Posted-callback handling; mixed into `Engine` next to the command handlers."""

    if TYPE_CHECKING:
        accounts: dict[str, SoftAccount]
        calls: dict[str, SoftCall]
        bridge: AudioBridge | None
        backend: AudioBackend
        _leaked: list[tuple[Any, Any]]

        def call_pj(self, fn: Callable[..., Any], *args: Any, what: str = "") -> Any: ...
        def emit_event(self, name: str, data: dict[str, Any]) -> None: ...
        def later(self, delay: float, fn: Callable[[], None]) -> None: ...
        def cmd_answer(self, call: str) -> dict[str, Any]: ...
        def _send_next_info_digit(self, c: SoftCall) -> None: ...
        def on_network_change(self, data: dict[str, Any]) -> None: ...
        def on_stun_checked(self, data: dict[str, Any]) -> None: ...

    # Posted callback data ----------------------------------------------------------------
    def handle_posted(self, kind: str, data: dict[str, Any]) -> None:
        """Act on what a callback copied out, now that the callback has returned."""
        if kind == "_incoming":
            self._incoming(data["call"], data["message"])
        elif kind == "_net_change":
            self.on_network_change(data)
        elif kind == "_stun_checked":
            self.on_stun_checked(data)
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
