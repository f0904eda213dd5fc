"""Real SIP peers on loopback for the phone tests: Kamailio, SIPp, free ports.

Each peer is started by a fixture with its own temp dir and ports, waited for with
deadlines (an OPTIONS ping for Kamailio), and stopped by killing the process group it was
started in, so nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.phone.netns import UDP_PROBE
from tests.support.wait import deadline, wait_until

if TYPE_CHECKING:
    from tests.phone.netns import Netns

KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

_rtp_bases = itertools.count(20000 + (os.getpid() % 40) * 400, 40)


def rtp_base() -> int:
    """A 40-port RTP range for one UA; distinct per UA in this test run."""
    return next(_rtp_bases)


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found")


def need(*tools: str) -> None:
    """Fail in words when a program a test needs is not installed."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (./dev test installs scripts/apt-test.txt)")


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM the process group `proc` leads (started with start_new_session), then KILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=deadline(timeout))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    else:  # the leader is gone: children may still hold the group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


KAMAILIO_CFG = r"""#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
{tls_listen}alias="{domain}"
alias="{host}:{port}"
mpath="{modules}"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "htable.so"
{tls_module}modparam("usrloc", "db_mode", 0)
modparam("htable", "htable", "users=>size=4;")
modparam("auth", "nonce_count", 0)

event_route[htable:mod-init] {{
{users}
}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("OPTIONS") && uri==myself && $rU==$null) {{
        sl_send_reply("200", "Keepalive"); exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{ route(RELAY); exit; }}
        if (is_method("ACK")) {{ if (t_check_trans()) {{ route(RELAY); }} exit; }}
        sl_send_reply("404", "Not here"); exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ route(RELAY); }} exit; }}
    t_check_trans();
    if (is_method("REGISTER")) {{
        xlog("L_NOTICE", "REGISTER $fu from $si:$sp contact $ct\n");
        if (!pv_www_authenticate("$td", "$sht(users=>$au)", "0")) {{
            www_challenge("$td", "0"); exit;
        }}
        if ($au != $tU) {{ sl_send_reply("403", "Forbidden auth ID"); exit; }}
        consume_credentials();
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (from_uri==myself && $sht(users=>$fU) != $null) {{
        if (!pv_proxy_authenticate("$fd", "$sht(users=>$au)", "0")) {{
            proxy_challenge("$fd", "0"); exit;
        }}
        consume_credentials();
    }}
    remove_hf("Route");
    if (is_method("INVITE|SUBSCRIBE|REFER")) {{ record_route(); }}
    if (uri==myself) {{
        if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
    }}
    route(RELAY);
}}

route[RELAY] {{
    if (!t_relay()) {{ sl_reply_error(); }}
    exit;
}}
"""


TLS_CFG = """\
[server:default]
method = TLSv1.2+
certificate = {cert}
private_key = {key}
verify_certificate = no
require_certificate = no

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
"""


@dataclass
class Kamailio:
    """A running Kamailio registrar/proxy with digest users (name -> password)."""

    port: int
    domain: str
    users: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    tls_cert: Path | None = None  # PEM cert + key: also listen for SIP over TLS on tls_port
    tls_key: Path | None = None
    tls_port: int = 0
    host: str = "127.0.0.1"  # the address it listens on
    netns: Netns | None = None  # run inside this namespace (tests/phone/netns.py)
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "kamailio.log"

    @property
    def address(self) -> str:
        """host:port of the proxy."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Write the config, start Kamailio in the foreground, wait until it answers OPTIONS.

        Raises:
            TimeoutError / RuntimeError: it did not come up (its log is in the message).
        """
        users = "\n".join(f'    $sht(users=>{u}) = "{p}";' for u, p in self.users.items())
        cfg = self.workdir / "kamailio.cfg"
        tls_listen = tls_module = ""
        if self.tls_cert is not None:
            tls_cfg = self.workdir / "tls.cfg"
            tls_cfg.write_text(TLS_CFG.format(cert=self.tls_cert, key=self.tls_key))
            tls_listen = f"enable_tls=yes\nlisten=tls:{self.host}:{self.tls_port}\n"
            tls_module = f'loadmodule "tls.so"\nmodparam("tls", "config", "{tls_cfg}")\n'
        cfg.write_text(
            KAMAILIO_CFG.format(
                port=self.port,
                host=self.host,
                domain=self.domain,
                users=users,
                modules=KAMAILIO_MODULES,
                tls_listen=tls_listen,
                tls_module=tls_module,
            )
        )
        check = subprocess.run(
            ["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30
        )
        if check.returncode != 0:
            raise RuntimeError(f"kamailio.cfg is invalid:\n{check.stderr[-3000:]}")
        prefix = self.netns.prefix if self.netns is not None else []
        self.proc = subprocess.Popen(
            [
                *prefix,
                "kamailio",
                "-f",
                str(cfg),
                "-DD",
                "-E",
                "-m",
                "64",
                "-M",
                "8",
                "-Y",
                str(self.workdir),
                "-w",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("wb"),
            start_new_session=True,
        )
        try:
            wait_until(
                self._answers_options,
                timeout=15,
                interval=0.1,
                what=f"kamailio on {self.address} to answer OPTIONS",
            )
        except TimeoutError as exc:
            self.stop()
            raise TimeoutError(f"{exc}\n{self.log_path.read_text()[-3000:]}") from exc

    def _answers_options(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"kamailio exited:\n{self.log_path.read_text()[-3000:]}")
        branch = "z9hG4bK" + uuid.uuid4().hex[:12]
        msg = (
            f"OPTIONS sip:{self.address} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch={branch};rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\n"
            f"To: <sip:{self.address}>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        if self.netns is not None:
            probe = msg.replace("127.0.0.1:9", "@@LOCAL@@")
            answer = self.netns.python(UDP_PROBE, self.host, str(self.port), probe)
            return answer.startswith("SIP/2.0 200")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            msg = msg.replace("127.0.0.1:9", f"127.0.0.1:{s.getsockname()[1]}")
            s.settimeout(0.3)
            s.sendto(msg.encode(), ("127.0.0.1", self.port))
            try:
                data = s.recv(4096)
            except TimeoutError:
                return False
        return data.startswith(b"SIP/2.0 200")

    def stop(self) -> None:
        """Stop Kamailio and all its children."""
        if self.proc is not None:
            stop_group(self.proc)


def start_coturn(
    workdir: Path, host: str, port: int, *options: str, netns: Netns | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    """coturn listening on host:port (UDP, no TLS), in `netns` if given; waits until it
    listens. `options` choose the role: `-S` for STUN only, or TURN's credentials.

    Returns:
        the process (stop it with `stop_group`) and its log, `workdir/turnserver.log`.
    """
    need("turnserver")
    log = workdir / "turnserver.log"
    proc = subprocess.Popen(
        [
            *(netns.prefix if netns is not None else []),
            "turnserver",
            "-n",
            "-L",
            host,
            "-p",
            str(port),
            *options,
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "-v",
            "--simple-log",
            "--no-stdout-log",
            "-l",
            str(log),
            "--pidfile",
            str(workdir / "turnserver.pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: (
                (log.exists() and "listener opened" in log.read_text(errors="replace"))
                or proc.poll() is not None
            ),
            timeout=10,
            what="coturn listening",
        )
        assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
    except BaseException:
        stop_group(proc)
        raise
    return proc, log


def start_time() -> float:
    """Monotonic now (for elapsed-time figures printed by tests)."""
    return time.monotonic()
