"""SIPp as a scripted peer: scenarios written per test, RTP from a raw u-law file or echoed.

Scenario texts are templates: @@EXTRA_HEADERS@@, @@RTP_FILE@@ and @@HOLD_CHECKS@@ are
filled by the builders below. SIPp exits 0 when every call of the scenario succeeded, so a
scenario's own checks (`check_it="true"` regexps on the SDP) fail the test through it.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.phone.peers import free_port, rtp_base, stop_group
from tests.support.wait import deadline, wait_until

_SDP = """v=0
o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
"""

_OK_HEAD = """SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
"""

UAS = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas: answer, play a u-law file, wait for BYE">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
{_OK_HEAD}Content-Type: application/sdp
Content-Length: [len]

{_SDP}
]]></send>
  <recv request="ACK" crlf="true"/>
  <nop><action><exec rtp_stream="@@RTP_FILE@@,-1,0"/></action></nop>
@@HOLD_CHECKS@@
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
"""

_REINVITE_CHECK = (
    """  <recv request="INVITE">
    <action><ereg regexp="a=@@DIR@@" search_in="body" check_it="true" assign_to="d@@N@@"/></action>
  </recv>
  <send retrans="500"><![CDATA[
"""
    + _OK_HEAD.replace("[last_To:];tag=[pid]SIPpTag01[call_number]", "[last_To:]")
    + """\
Content-Type: application/sdp
Content-Length: [len]

"""
    + _SDP.replace("a=sendrecv", "a=@@ANSWER@@")
    + """
]]></send>
  <recv request="ACK" crlf="true"/>
"""
)

UAC = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uac: call the engine, echo its RTP, hang up">
  <send retrans="500"><![CDATA[
INVITE sip:agent@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Queue Support" <sip:queue@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:agent@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:queue@[local_ip]:[local_port]>
Max-Forwards: 70
@@EXTRA_HEADERS@@Content-Type: application/sdp
Content-Length: [len]

{_SDP}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:agent@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Queue Support" <sip:queue@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:agent@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:queue@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="@@TALK_MS@@"/>
  <send retrans="500"><![CDATA[
BYE sip:agent@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Queue Support" <sip:queue@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:agent@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: <sip:queue@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def uas_scenario(rtp_file: Path, hold_checks: bool = False) -> str:
    """A UAS that answers, streams `rtp_file` (raw u-law), and, when asked, requires a
    re-INVITE with a=sendonly (hold) and then one with a=sendrecv (resume) before the BYE."""
    checks = ""
    if hold_checks:
        checks = (
            _REINVITE_CHECK.replace("@@DIR@@", "sendonly")
            .replace("@@ANSWER@@", "recvonly")
            .replace("@@N@@", "1")
            + _REINVITE_CHECK.replace("@@DIR@@", "sendrecv")
            .replace("@@ANSWER@@", "sendrecv")
            .replace("@@N@@", "2")
            + '  <Reference variables="d1,d2"/>\n'
        )
    return UAS.replace("@@RTP_FILE@@", str(rtp_file)).replace("@@HOLD_CHECKS@@", checks)


def uac_scenario(extra_headers: list[str] | None = None, talk_ms: int = 3000) -> str:
    """A UAC that calls (the engine, or a SIPp UAS in the call bench), waits `talk_ms` after
    ACK, then sends BYE."""
    headers = "".join(h + "\n" for h in extra_headers or [])
    return UAC.replace("@@EXTRA_HEADERS@@", headers).replace("@@TALK_MS@@", str(talk_ms))


def write_ulaw_tone(path: Path, freq: float, seconds: float) -> Path:
    """Raw u-law 8 kHz (what SIPp's rtp_stream sends as PCMU), made by sox."""
    subprocess.run(
        [
            "sox",
            "-n",
            "-t",
            "ul",
            "-r",
            "8000",
            "-c",
            "1",
            str(path),
            "synth",
            str(seconds),
            "sine",
            str(freq),
            "vol",
            "0.5",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path


class Sipp:
    """One SIPp process with its own SIP and media ports: on loopback by default, or on
    `host` inside a network namespace when `prefix` is that namespace's `ip netns exec`."""

    def __init__(
        self,
        workdir: Path,
        scenario: str,
        name: str = "sipp",
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        media_port: int | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.host = host
        self.prefix = list(prefix)
        self.port = port or free_port()
        self.media_port = media_port or rtp_base()
        self.scenario_path = workdir / f"{name}.xml"
        self.scenario_path.write_text(scenario)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}.out"

    def start(self, remote: str | None = None, extra: list[str] | None = None) -> None:
        """Start SIPp (as UAC towards `remote`, or as UAS when None); waits for its socket."""
        argv = (
            [*self.prefix, "sipp"]
            + ([remote] if remote else [])
            + [
                "-sf",
                str(self.scenario_path),
                "-i",
                self.host,
                "-p",
                str(self.port),
                "-mp",
                str(self.media_port),
                "-m",
                "1",
                "-nostdin",
                "-timeout",
                "60s",
                "-timeout_error",
                "-trace_err",
                "-error_file",
                str(self.workdir / f"{self.name}.err"),
                "-trace_msg",
                "-message_file",
                str(self.workdir / f"{self.name}.msg"),
            ]
            + (extra or [])
        )
        self.proc = subprocess.Popen(
            argv,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._bound, timeout=10, what=f"{self.name} listening on {self.port}")

    def _bound(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited early: {self.output()}")
        if self.prefix:  # another namespace: ask it which UDP sockets listen
            listening = subprocess.run(
                [*self.prefix, "ss", "-Hlun"], capture_output=True, text=True, timeout=20
            ).stdout
            return f"{self.host}:{self.port} " in listening
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                return True
        return False

    def wait(self, timeout: float = 30) -> int:
        """Wait for SIPp to finish its calls; its exit status (0: all calls succeeded)."""
        assert self.proc is not None
        return self.proc.wait(timeout=deadline(timeout))

    def output(self) -> str:
        """Its screen output, error log and message trace, for failure messages."""
        parts = []
        for suffix in (".out", ".err", ".msg"):
            p = self.workdir / f"{self.name}{suffix}"
            if p.exists():
                parts.append(p.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def stop(self) -> None:
        """Kill it if still running."""
        if self.proc is not None:
            stop_group(self.proc)
