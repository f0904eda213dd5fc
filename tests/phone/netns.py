"""Network namespaces made by a test, for what loopback cannot show: a route that changes
(re-registration after a network change) and non-loopback host candidates (ICE).

Each namespace has its own loopback and nothing else until the test joins two with a veth
pair; addresses are private (10.x) and exist only inside the namespaces, which are deleted
at the end (deleting a namespace deletes its end of the veth, and so the pair). The host's
own network is never touched. Needs root (CAP_NET_ADMIN) and iproute2.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

_ids = itertools.count()

#: Runs a one-line UDP request/answer check inside a namespace: sends argv[3] to
#: argv[1]:argv[2] and prints the first answer (see Kamailio's OPTIONS probe).
UDP_PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(sys.argv[3].replace("@@LOCAL@@", "%s:%d" % s.getsockname()).encode())
try:
    sys.stdout.write(s.recv(4096).decode("latin-1"))
except OSError:
    pass
"""


def ip(*args: str) -> str:
    """Run `ip ARGS`; its stdout.

    Raises:
        subprocess.CalledProcessError: with iproute2's message.
    """
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, ["ip", *args], done.stdout, done.stderr
        )
    return done.stdout


class Netns:
    """One namespace, named uniquely for this test process (`sbPIDxN`)."""

    def __init__(self) -> None:
        self.name = f"sb{os.getpid()}x{next(_ids)}"
        ip("netns", "add", self.name)
        self.ip("link", "set", "lo", "up")

    @property
    def prefix(self) -> list[str]:
        """argv prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def ip(self, *args: str) -> str:
        """`ip -n NAME ARGS`."""
        return ip("-n", self.name, *args)

    def python(self, code: str, *args: str, timeout: float = 10) -> str:
        """Run Python code inside the namespace; its stdout."""
        done = subprocess.run(
            [*self.prefix, sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return done.stdout

    def delete(self) -> None:
        """Delete the namespace (its processes must be gone first)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("netns", "delete", self.name)


def link(a: Netns, addr_a: str, b: Netns, addr_b: str, tag: str = "v") -> tuple[str, str]:
    """Join two namespaces with a veth pair; `addr_*` are CIDR ("10.1.0.1/24").

    An interface is named after its namespace and `tag`: a namespace with two links (a
    router) needs a different tag for each.

    Returns:
        the interface names in a and in b.
    """
    ia, ib = f"{a.name}{tag}", f"{b.name}{tag}"
    ip("link", "add", ia, "netns", a.name, "type", "veth", "peer", "name", ib, "netns", b.name)
    for ns, iface, addr in ((a, ia, addr_a), (b, ib, addr_b)):
        ns.ip("addr", "add", addr, "dev", iface)
        ns.ip("link", "set", iface, "up")
    return ia, ib


def need_netns() -> None:
    """Fail in words when namespaces cannot be made here."""
    if shutil.which("ip") is None:
        pytest.fail("iproute2 is not installed (./dev test installs scripts/apt-test.txt)")
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root (CAP_NET_ADMIN) to create namespaces")


@contextlib.contextmanager
def namespaces(count: int) -> Iterator[list[Netns]]:
    """`count` fresh namespaces, deleted at the end."""
    need_netns()
    made: list[Netns] = []
    try:
        for _ in range(count):
            made.append(Netns())
        yield made
    finally:
        for ns in made:
            ns.delete()
