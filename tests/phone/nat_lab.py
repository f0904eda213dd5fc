"""The NAT lab of test_nat_real.py: three network namespaces (agent, NAT, public), Kamailio
and coturn in the public one, a SIPp far end that does not latch, and readers for the SIP
messages the engines and Kamailio logged. Topology and why: test_nat_real.py's docstring.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.phone.audio import write_tone
from tests.phone.conftest import USERS
from tests.phone.engine_peer import EnginePeer, ice_teardown_ended
from tests.phone.netns import Netns, link, namespaces
from tests.phone.peers import Kamailio, need, start_coturn, stop_group
from tests.phone.sipp import Sipp, uas_scenario, write_ulaw_tone

SERVER = "198.51.100.1"  # Kamailio, coturn and bob
NAT_PUBLIC = "198.51.100.2"  # what the public side sees of the agent
NAT_PRIVATE = "192.168.77.1"
AGENT = "192.168.77.2"
STUN = f"{SERVER}:3478"
TURN_USER, TURN_PASSWORD, TURN_REALM = "agent", "turn-secret", "switchboard.test"
VERBOSE = ["--pj-log-level", "5", "-v"]  # SIP messages (with SDP) and STUN/ICE in the engine log
ALICE_HZ, BOB_HZ = 1000, 600


def _iptables(ns: Netns, *rule: str) -> str:
    """Add a rule with whichever iptables backend this kernel takes (nft first, legacy next).

    Raises:
        pytest.fail.Exception: neither backend could add it (the kernel has no NAT support),
            with both messages.
    """
    errors = []
    for tool in ("iptables-nft", "iptables-legacy", "iptables"):
        if shutil.which(tool) is None:
            errors.append(f"{tool}: not installed")
            continue
        done = subprocess.run([*ns.prefix, tool, *rule], capture_output=True, text=True, timeout=20)
        if done.returncode == 0:
            return tool
        errors.append(f"{tool}: {done.stderr.strip()}")
    pytest.fail(f"cannot add iptables rule {rule}: " + "; ".join(errors))


@dataclass
class NatLab:
    """The three namespaces, the servers in `public` and a way to start engines in either."""

    public: Netns
    nat: Netns
    agent: Netns
    workdir: Path
    factory: Callable[..., EnginePeer]
    kamailio: Kamailio | None = None
    turn_log: Path | None = None
    engines: list[EnginePeer] = field(default_factory=list)
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def engine(self, name: str, where: Netns, bind: str, freq: int) -> EnginePeer:
        """An engine in `where` with a tone of `freq` Hz as its microphone."""
        peer = self.factory(
            name,
            mic=write_tone(self.workdir / f"{name}.wav", freq, 3),
            extra=["--bind", bind, *VERBOSE],
            prefix=where.prefix,
        )
        self.engines.append(peer)
        return peer

    def with_ice_restarts(self, attempt: Callable[[], None], attempts: int = 3) -> None:
        """Run `attempt` (which starts its own engines); when an engine died of pjproject
        #5126 as an ICE call ended (tests/phone/test_ice.py), close the engines and run it
        again from the start, at most `attempts` times. Any other failure fails at once."""
        for _ in range(attempts):
            try:
                attempt()
                return
            except (AssertionError, TimeoutError, BrokenPipeError):
                if not ice_teardown_ended(self.engines):
                    raise
            print("an engine died of pjproject #5126 as an ICE call ended: starting again")
            for peer in self.engines:
                peer.close()
            self.engines.clear()
        raise AssertionError(f"{attempts} attempts in a row hit pjproject #5126")

    def register(self, peer: EnginePeer, **nat: object) -> dict[str, object]:
        """Register `peer` at Kamailio and wait until it is Registered."""
        assert self.kamailio is not None
        r = peer.request(
            "register",
            timeout=20,
            user=peer.name,
            domain=self.kamailio.domain,
            password=USERS[peer.name],
            **nat,
        )
        peer.wait_event("reg_state", lambda d: d["state"] == "Registered", timeout=15)
        return r


@contextlib.contextmanager
def nat_lab(
    workdir: Path, factory: Callable[..., EnginePeer], symmetric: bool = False
) -> Iterator[NatLab]:
    """Build the topology; `symmetric` maps each new destination to a random NAT port
    (`MASQUERADE --random`), as carrier-grade and many corporate NATs do."""
    need("kamailio", "turnserver", "sipp", "sox")
    with namespaces(3) as (public, nat, agent):
        _, nat_pub_if = link(public, f"{SERVER}/24", nat, f"{NAT_PUBLIC}/24", "pub")
        link(nat, f"{NAT_PRIVATE}/24", agent, f"{AGENT}/24", "prv")
        agent.ip("route", "add", "default", "via", NAT_PRIVATE)
        subprocess.run(
            [*nat.prefix, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True, timeout=10
        )
        rule = ["-t", "nat", "-A", "POSTROUTING", "-o", nat_pub_if, "-j", "MASQUERADE"]
        _iptables(nat, *rule, *(["--random"] if symmetric else []))
        kdir = workdir / "kamailio"
        kdir.mkdir()
        lab = NatLab(public, nat, agent, workdir, factory)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            lab.kamailio = Kamailio(
                port=5060,
                domain=f"{SERVER}:5060",
                users=USERS,
                workdir=kdir,
                host=SERVER,
                netns=public,
            )
            lab.kamailio.start()
            # STUN and TURN (long-term credentials), relay ports in a range of its own
            turn, lab.turn_log = start_coturn(
                workdir,
                SERVER,
                3478,
                *("-E", SERVER, "--min-port", "49200", "--max-port", "49300"),
                *("--lt-cred-mech", "-u", f"{TURN_USER}:{TURN_PASSWORD}", "-r", TURN_REALM),
                netns=public,
            )
            procs.append(turn)
            yield lab
        finally:
            for peer in lab.engines:  # engines leave before their namespaces do
                peer.close()
            for stop in lab.stoppers:
                stop()
            for proc in procs:
                stop_group(proc)
            if lab.kamailio is not None:
                lab.kamailio.stop()


@dataclass
class SipMessage:
    """One SIP message as the engine's PJSIP log (level 5) shows it."""

    direction: str  # "RX" or "TX"
    first_line: str  # "INVITE sip:bob@... SIP/2.0" or "SIP/2.0 200 OK"
    text: str

    def sdp_media(self) -> str | None:
        """ "ADDR:PORT" of the SDP's connection and audio lines, None without SDP."""
        addr = port = ""
        for line in self.text.splitlines():
            if line.startswith("c=IN IP4 ") and not addr:
                addr = line.split()[2]
            elif line.startswith("m=audio ") and not port:
                port = line.split()[1]
        return f"{addr}:{port}" if addr and port else None


def sip_messages(log: str) -> list[SipMessage]:
    """Every SIP message in an engine log, in order."""
    out: list[SipMessage] = []
    current: list[str] | None = None
    direction = ""
    for line in log.splitlines():
        if line[:2] == "20" and "softphone.pjsip: " in line:  # a new log record
            if current:
                out.append(SipMessage(direction, current[0], "\n".join(current)))
            current = None
            rest = line.split("softphone.pjsip: ", 1)[1]
            if rest[:3] in ("RX ", "TX ") and " msg " in rest:
                direction, current = rest[:2], []
        elif current is not None and (current or line.strip()):
            current.append(line)
    if current:
        out.append(SipMessage(direction, current[0], "\n".join(current)))
    return out


def invite_media(peer: EnginePeer, direction: str) -> list[str]:
    """The SDP media address of each INVITE `peer` sent ("TX") or received ("RX")."""
    return [
        m.sdp_media() or "-"
        for m in sip_messages(peer.log_text())
        if m.direction == direction and m.first_line.startswith("INVITE ")
    ]


def kamailio_contacts(k: Kamailio, user: str) -> list[str]:
    """`from SRC contact CONTACT` of each REGISTER of `user` Kamailio logged."""
    marker = f"REGISTER sip:{user}@"
    return [
        line.split(" from ", 1)[1]
        for line in k.log_path.read_text(errors="replace").splitlines()
        if marker in line
    ]


class SippUas(Sipp):
    """SIPp answering in the public namespace and streaming a u-law tone to the address in
    the caller's SDP. Unlike PJSIP it never re-targets its RTP at the address packets come
    from (no "latching"), as a PBX or carrier without NAT traversal for its clients does."""

    def __init__(self, lab: NatLab, tone_hz: int) -> None:
        tone = write_ulaw_tone(lab.workdir / "sipp-tone.ul", tone_hz, 4)
        super().__init__(
            lab.workdir,
            uas_scenario(tone),
            "uas",
            host=SERVER,
            port=5070,
            media_port=6000,
            prefix=lab.public.prefix,
        )
        lab.stoppers.append(self.stop)
        self.start()

    @property
    def uri(self) -> str:
        return f"sip:sipp@{SERVER}:{self.port}"


def run_in(ns: Netns, *argv: str) -> str:
    """Run a program inside `ns`; its stdout."""
    return subprocess.run(
        [*ns.prefix, *argv], capture_output=True, text=True, timeout=20, check=True
    ).stdout
