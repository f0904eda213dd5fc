"""Calls: the pjsua2 Call subclass, and the pure functions that read headers, SDP and stats.

Callbacks copy data into dicts and post them; the engine acts on them on its own thread
after the callback returns (a Call must never be deleted inside its own callback). DTMF
digits sent by RFC 4733 arrive on the media thread: the post is a queue put, so that is safe.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

log = logging.getLogger(__name__)

Post = Callable[[str, dict[str, Any]], None]

#: pjsua's call table size (uaConfig.maxCalls). The pjsua2-python wheel is built with
#: PJSUA_MAX_CALLS = 4 and silently cuts a larger maxCalls to 4 (looking up call id 4 then
#: aborts on an assert): enough for an agent (a call, a consultation, one waiting).
MAX_CALLS = 4

STATES = {
    pj.PJSIP_INV_STATE_NULL: "null",
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_INCOMING: "incoming",
    pj.PJSIP_INV_STATE_EARLY: "early",
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
    pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
}

MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}

DIRECTIONS = {
    pj.PJMEDIA_DIR_NONE: "inactive",
    pj.PJMEDIA_DIR_ENCODING: "sendonly",
    pj.PJMEDIA_DIR_DECODING: "recvonly",
    pj.PJMEDIA_DIR_ENCODING_DECODING: "sendrecv",
}

_ANSWER_AFTER = re.compile(r"answer-after\s*=\s*(\d+)", re.IGNORECASE)
_AUTO_ALERT = re.compile(r"auto[ -]?answer|alert-autoanswer", re.IGNORECASE)
_SDP_DIR = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", re.MULTILINE)
_DISPLAY = re.compile(r'^\s*"?([^"<]*?)"?\s*<')


def header_values(message: str, name: str) -> list[str]:
    """Values of every `name:` header of a SIP message (case-insensitive, folded lines not
    supported because no peer we meet sends them)."""
    head = message.split("\r\n\r\n", 1)[0].replace("\r\n", "\n")
    prefix = name.lower() + ":"
    return [
        line.split(":", 1)[1].strip()
        for line in head.split("\n")
        if line.lower().startswith(prefix)
    ]


def auto_answer_after(message: str) -> int | None:
    """Seconds after which the ACD asks us to answer, or None.

    `Call-Info: <...>;answer-after=N` (RFC 5373 style, Polycom/Yealink/Asterisk) or an
    `Alert-Info` naming auto-answer (Cisco/Broadsoft: `info=alert-autoanswer`, `Auto Answer`).
    """
    for value in header_values(message, "Call-Info"):
        m = _ANSWER_AFTER.search(value)
        if m:
            return int(m.group(1))
    for value in header_values(message, "Alert-Info"):
        if _AUTO_ALERT.search(value):
            return 0
    return None


def sdp_direction(sdp: str) -> str:
    """The audio direction attribute of an SDP (session or first media level), sendrecv when
    absent (RFC 3264's default)."""
    found = _SDP_DIR.findall(sdp.replace("\r\n", "\n"))
    return found[-1] if found else "sendrecv"


def display_name(uri: str) -> str:
    """The display name of a name-addr, or ""."""
    m = _DISPLAY.match(uri)
    return m.group(1).strip() if m else ""


def mos_estimate(rtt_ms: float, jitter_ms: float, loss_pct: float) -> float:
    """A listening-quality MOS from the simplified E-model (ITU-T G.107) for G.711 with PLC.

    The one-way delay is half the RTT plus twice the jitter (the jitter buffer) plus 10 ms of
    codec delay; Bpl = 25.1 for G.711 with packet loss concealment.
    """
    delay = rtt_ms / 2 + 2 * jitter_ms + 10
    idelay = 0.024 * delay + (0.11 * (delay - 177.3) if delay > 177.3 else 0.0)
    ie_eff = 95 * loss_pct / (loss_pct + 25.1) if loss_pct > 0 else 0.0
    r = max(0.0, min(100.0, 93.2 - idelay - ie_eff))
    mos = 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)
    return round(max(1.0, min(4.5, mos)), 2)


def stream_stats(call: Any, med_idx: int) -> dict[str, Any]:
    """RTP/RTCP figures of one audio stream as plain numbers (engine thread)."""
    st = call.getStreamStat(med_idx)
    rtcp = st.rtcp
    rx, tx = rtcp.rxStat, rtcp.txStat
    rx_pkts = int(rx.pkt)
    lost = int(rx.loss)
    loss_pct = 100.0 * lost / (rx_pkts + lost) if rx_pkts + lost else 0.0
    jitter_ms = rx.jitterUsec.mean / 1000 if rx.jitterUsec.n else 0.0
    rtt_ms = rtcp.rttUsec.mean / 1000 if rtcp.rttUsec.n else 0.0
    return {
        "rx_packets": rx_pkts,
        "tx_packets": int(tx.pkt),
        "rx_lost": lost,
        "loss_pct": round(loss_pct, 2),
        "jitter_ms": round(jitter_ms, 2),
        "rtt_ms": round(rtt_ms, 2),
        "jbuf_ms": int(st.jbuf.avgDelayMsec),
        "jbuf": jbuf_state(st.jbuf),
        "mos": mos_estimate(rtt_ms, jitter_ms, loss_pct),
    }


def jbuf_state(jb: Any) -> dict[str, int]:
    """The receive jitter buffer in numbers a VoIP engineer reads: frames held now, the
    prefetch it settled on and the burst it has seen (frames), the least and most delay
    (ms), and the frames it had none to give (`empty`), threw away (`discard`) or never got
    (`lost`) so far. Its delay is the largest part of mouth-to-ear after the devices."""
    return {
        "frames": int(jb.size),
        "prefetch": int(jb.prefetch),
        "burst": int(jb.burst),
        "min_ms": int(jb.minDelayMsec),
        "max_ms": int(jb.maxDelayMsec),
        "empty": int(jb.empty),
        "discard": int(jb.discard),
        "lost": int(jb.lost),
    }


class SoftCall(pj.Call):
    """A call that reports to the engine by posting plain dicts.

    Args:
        key: the engine's id for this call ("call3"): stable, unlike pjsua's reused ints.
    """

    def __init__(
        self,
        account: Any,
        key: str,
        post: Post,
        call_id: int = -1,
        adopt: Callable[[Any, int], SoftCall] | None = None,
    ) -> None:
        if call_id >= 0:
            super().__init__(account, call_id)
        else:
            super().__init__(account)
        self.key = key
        self._post = post
        self._account = account
        self._adopt = adopt
        self.account_name: str = account.settings.name
        self.muted = False
        self.on_hold = False
        self.ringing_in = False  # an incoming call not yet answered: the ringer plays
        self.ringing_out = False  # our call rings at the far end (180): ringback plays
        self.remote_direction = "sendrecv"
        self.connected_slots: dict[int, int] = {}  # media index -> conference slot
        self.recorder: Any = None  # AudioMediaRecorder while recording
        self.recording_path = ""
        self.conferenced: set[str] = set()  # keys of calls whose audio is bridged with ours
        self.info_digits = ""  # SIP INFO digits still to send, one transaction at a time
        self.info_in_flight = False

    def onCallState(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Engine thread: the INVITE session moved."""
        ci = self.getInfo()
        self._post(
            "call_state",
            {
                "call": self.key,
                "state": STATES.get(ci.state, str(ci.state)),
                "code": int(ci.lastStatusCode),
                "reason": str(ci.lastReason),
                "remote": str(ci.remoteUri),
                "role": "outgoing" if ci.role == pj.PJSIP_ROLE_UAC else "incoming",
                "duration": int(ci.connectDuration.sec),
            },
        )

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Engine thread: SDP negotiation finished (call start, hold, resume)."""
        self._post("_media", {"call": self.key})

    def onCallSdpCreated(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Engine thread: remember the direction the far end offered (hold shows here)."""
        remote = str(prm.remSdp.wholeSdp)
        if remote:
            self.remote_direction = sdp_direction(remote)

    def onCallTsxState(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Engine thread: note when our INFO (DTMF) transaction has its final answer."""
        if prm.e.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx = prm.e.body.tsxState.tsx
        if (
            tsx.role == pj.PJSIP_ROLE_UAC
            and tsx.method == "INFO"
            and tsx.state in (pj.PJSIP_TSX_STATE_COMPLETED, pj.PJSIP_TSX_STATE_TERMINATED)
            and self.info_in_flight
        ):
            self._post("_info_done", {"call": self.key, "code": int(tsx.statusCode)})

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Media thread (RFC 4733) or engine thread (SIP INFO): post the digit."""
        method = "info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
        self._post(
            "dtmf",
            {
                "call": self.key,
                "digit": str(prm.digit),
                "method": method,
                "duration_ms": int(prm.duration),
            },
        )

    def onCallTransferRequest(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Engine thread: the far end REFERs us elsewhere (we are the transferee). PJSIP
        places the new call itself; we hand it a SoftCall so its events reach the UI."""
        if self._adopt is None:
            return
        new = self._adopt(self._account, -1)
        prm.newCall = new
        self._post(
            "transfer_request", {"call": self.key, "to": str(prm.dstUri), "new_call": new.key}
        )

    def onCallReplaced(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Engine thread: an INVITE with Replaces takes this call's place (we are the target
        of an attended transfer). The new call needs its Call object now, or PJSIP carries
        on with none and crashes later."""
        if self._adopt is None:
            return
        new = self._adopt(self._account, int(prm.newCallId))
        prm.newCall = new
        self._post("call_replaced", {"call": self.key, "new_call": new.key})

    def onCallTransferStatus(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Engine thread: NOTIFY about a transfer we asked for."""
        self._post(
            "transfer_state",
            {
                "call": self.key,
                "code": int(prm.statusCode),
                "reason": str(prm.reason),
                "final": bool(prm.finalNotify),
            },
        )
