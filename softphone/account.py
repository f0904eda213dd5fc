"""SIP accounts: building the pjsua2 configuration and turning registration into words.

The `SoftAccount` callbacks run on the engine thread (threadCnt=0: they come out of
`libHandleEvents`); they copy what they need into plain dicts and post them to the engine,
which handles them after the callback has returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

log = logging.getLogger(__name__)

Post = Callable[[str, dict[str, Any]], None]

TRANSPORTS = ("udp", "tcp", "tls")

_REASONS = {
    401: "the registrar refused the user name or password",
    403: "the registrar refused the user name or password (forbidden)",
    404: "the registrar does not know this user",
    407: "the proxy refused the user name or password",
    408: "the registrar did not answer in time",
    423: "the registrar wants a longer registration interval",
    480: "the registrar is temporarily unavailable",
    500: "the registrar had an internal error",
    502: "the registrar could not be reached (bad gateway)",
    503: "the registrar could not be reached (network or DNS problem)",
    504: "the registrar timed out reaching another server",
}


def reason_in_words(code: int, sip_reason: str) -> str:
    """What a failed SIP status means for an agent ("wrong password?"), with the SIP text."""
    words = _REASONS.get(code)
    if "CERTVERIF" in sip_reason or "certificate verification" in sip_reason.lower():
        # PJSIP reports it as a 503 "could not reach"; the cause is the PBX's certificate.
        words = "the PBX's TLS certificate did not verify, so the connection was refused"
    if words is None:
        words = "the server refused the request" if code >= 400 else "unexpected answer"
    return f"{words} ({code} {sip_reason})" if sip_reason else f"{words} ({code})"


@dataclass(frozen=True)
class AccountSettings:
    """What the `register` command carries. The password never appears in repr/logs."""

    name: str
    user: str
    domain: str
    password: str = ""
    auth_user: str = ""
    registrar: str | None = None  # None: same as domain; "" : do not register
    proxy: str = ""
    transport: str = "udp"
    display_name: str = ""
    expires: int = 300
    auto_answer: bool = False
    srtp: str = "off"
    stun_servers: tuple[str, ...] = ()  # host[:port]; remote workers behind NAT
    ice: bool = False
    turn_server: str = ""  # host[:port] of a TURN relay (with ICE); "" for none
    turn_transport: str = "udp"  # udp | tcp | tls, to the TURN server
    turn_user: str = ""
    turn_password: str = ""

    def __repr__(self) -> str:
        return (
            f"AccountSettings(name={self.name!r}, user={self.user!r}, "
            f"domain={self.domain!r}, transport={self.transport!r}, password=***)"
        )

    @property
    def id_uri(self) -> str:
        """The account's address of record."""
        uri = f"sip:{self.user}@{self.domain}"
        return f'"{self.display_name}" <{uri}>' if self.display_name else uri

    def registrar_uri(self) -> str:
        """The REGISTER request URI, with the transport parameter when not UDP."""
        if self.registrar == "":
            return ""
        host = self.registrar or self.domain
        uri = host if host.startswith("sip:") else f"sip:{host}"
        return _with_transport(uri, self.transport)

    def proxy_uri(self) -> str:
        """The outbound proxy as a loose-routing URI, or "" for none."""
        if not self.proxy:
            return ""
        uri = self.proxy if self.proxy.startswith("sip:") else f"sip:{self.proxy}"
        uri = _with_transport(uri, self.transport)
        return uri if ";lr" in uri else uri + ";lr"


def _with_transport(uri: str, transport: str) -> str:
    if transport == "udp" or ";transport=" in uri:
        return uri
    return f"{uri};transport={transport}"


_TURN_TP = {"udp": "PJ_TURN_TP_UDP", "tcp": "PJ_TURN_TP_TCP", "tls": "PJ_TURN_TP_TLS"}

_SRTP = {
    "off": "PJMEDIA_SRTP_DISABLED",
    "optional": "PJMEDIA_SRTP_OPTIONAL",
    "mandatory": "PJMEDIA_SRTP_MANDATORY",
}


def build_config(
    s: AccountSettings, transport_id: int, rtp_port: int, rtp_range: int, bind: str = ""
) -> Any:
    """The pjsua2 AccountConfig for `s` (engine thread)."""
    cfg = pj.AccountConfig()
    cfg.idUri = s.id_uri
    cfg.regConfig.registrarUri = s.registrar_uri()
    cfg.regConfig.registerOnAdd = bool(cfg.regConfig.registrarUri)
    cfg.regConfig.timeoutSec = max(60, int(s.expires))
    cfg.regConfig.retryIntervalSec = 30
    cfg.regConfig.firstRetryIntervalSec = 5
    cfg.regConfig.dropCallsOnFail = False
    cfg.regConfig.unregWaitMsec = 1500
    if s.password or s.auth_user:
        cred = pj.AuthCredInfo("digest", "*", s.auth_user or s.user, 0, s.password)
        cfg.sipConfig.authCreds.append(cred)
    proxy = s.proxy_uri()
    if proxy:
        cfg.sipConfig.proxies.append(proxy)
    cfg.sipConfig.transportId = transport_id
    cfg.mediaConfig.transportConfig.port = rtp_port
    cfg.mediaConfig.transportConfig.portRange = rtp_range
    if bind and bind != "0.0.0.0":
        # RTP on the same address as SIP; otherwise SDP advertises the default interface.
        cfg.mediaConfig.transportConfig.boundAddress = bind
    cfg.mediaConfig.srtpUse = getattr(pj, _SRTP.get(s.srtp, "PJMEDIA_SRTP_DISABLED"))
    cfg.mediaConfig.srtpSecureSignaling = 0
    # Remote workers: STUN finds the public address of the RTP socket, ICE offers it next to
    # the host address so the far end picks a path that works. SIP keeps rport (the PBX sees
    # our public address from the Via), not STUN, which breaks behind symmetric NAT.
    stun = "PJSUA_STUN_USE_DEFAULT" if s.stun_servers else "PJSUA_STUN_USE_DISABLED"
    cfg.natConfig.mediaStunUse = getattr(pj, stun)
    cfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
    cfg.natConfig.iceEnabled = bool(s.ice)
    if s.turn_server:
        # A relay candidate for ICE: the one path a symmetric NAT (a new port per
        # destination) cannot break, at the cost of the relay's bandwidth and a hop.
        cfg.natConfig.turnEnabled = True
        cfg.natConfig.turnServer = s.turn_server
        cfg.natConfig.turnConnType = getattr(pj, _TURN_TP[s.turn_transport])
        cfg.natConfig.turnUserName = s.turn_user
        cfg.natConfig.turnPasswordType = 0  # PJ_STUN_PASSWD_PLAIN
        cfg.natConfig.turnPassword = s.turn_password
    return cfg


class SoftAccount(pj.Account):
    """A pjsua2 account that reports to the engine by posting plain dicts."""

    def __init__(
        self,
        settings: AccountSettings,
        post: Post,
        on_incoming: Callable[[SoftAccount, int, str], None],
    ) -> None:
        super().__init__()
        self.settings = settings
        self._post = post
        self._on_incoming = on_incoming
        self.last_state = "Unregistered"

    def onRegState(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Engine thread: REGISTER got a final answer (or failed to be sent)."""
        code, reason, expiration = int(prm.code), str(prm.reason), int(prm.expiration)
        if 200 <= code < 300:
            state = "Registered" if expiration > 0 else "Unregistered"
            words = "registered" if expiration > 0 else "unregistered"
        else:
            state = "Failed"
            words = reason_in_words(code, reason)
        self.last_state = state
        self._post(
            "reg_state",
            {
                "account": self.settings.name,
                "state": state,
                "code": code,
                "sip_reason": reason,
                "reason": words,
                "expires": expiration,
            },
        )

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Engine thread: an INVITE arrived; the engine makes the Call object now."""
        self._on_incoming(self, int(prm.callId), str(prm.rdata.wholeMsg))
