"""A real `switchboard-phone rpc` process, driven over stdio like the UI drives it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from softphone import rpc
from tests.phone.peers import rtp_base
from tests.support.wait import deadline, wait_until

ROOT = Path(__file__).resolve().parents[2]


#: The assert pjproject #5126 trips as an ICE call ends (a send racing the ICE transport's
#: teardown; fixed after 2.15.1, the wheel's version).
ICE_TEARDOWN_ASSERT = "pj_stun_sock_sendto: Assertion `stun_sock && pkt && dst_addr && addr_len'"


def died_of_ice_teardown(peer: EnginePeer) -> bool:
    """The engine died of pjproject #5126: its assert (SIGABRT with that line), or the same
    race without the assert reached (SIGSEGV), both seen only as an ICE call ends."""
    code = peer.proc.returncode
    return (code == -6 and ICE_TEARDOWN_ASSERT in peer.log_text()) or code == -11


def ice_teardown_ended(peers: Iterable[EnginePeer]) -> bool:
    """After an ICE call failed (a wait saw an engine gone, or a command met its closed
    stdin): True when an engine died and every dead one of #5126 (the call may be made again
    with fresh engines), False when all live (the failure is real).

    Raises:
        AssertionError: an engine died of anything else, with its log.
    """
    dead = [p for p in peers if p.proc.poll() is not None]
    for peer in dead:
        assert died_of_ice_teardown(peer), peer.log_text()[-3000:]
    return bool(dead)


class EngineError(AssertionError):
    """The engine answered a command with an error."""


class EnginePeer:
    """One engine process with the WAV backend.

    Args:
        workdir: where its stderr log and speaker WAV go.
        mic: WAV file played as the microphone (None: silence).
        prefix: argv before the interpreter (`ip netns exec NS` runs it in a namespace).
    """

    def __init__(
        self,
        workdir: Path,
        name: str,
        mic: Path | None = None,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.speaker = workdir / f"{name}-speaker.wav"
        self.log_path = workdir / f"{name}-engine.log"
        self.rtp_port = rtp_base()
        argv = [
            *(prefix or []),
            sys.executable,
            "-m",
            "softphone",
            "rpc",
            "--bind",
            "127.0.0.1",
            "--rtp-port",
            str(self.rtp_port),
            "--rtp-range",
            "40",
            "--speaker",
            str(self.speaker),
            "--quality-interval",
            "1",
        ]
        if mic is not None:
            argv += ["--mic", str(mic)]
        argv += extra or []
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self.messages: list[rpc.Message] = []
        self.raw_lines: list[str] = []
        self._lock = threading.Lock()
        self._ids = rpc.IdSource(name)
        self._reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self._reader.start()
        self.ready = self.wait_event("ready", timeout=20)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            msg = rpc.decode(line)  # a bad line from the engine fails the test: let it raise
            with self._lock:
                self.raw_lines.append(line)
                self.messages.append(msg)

    @property
    def sip_port(self) -> int:
        """The engine's UDP SIP port."""
        return int(self.ready["sip_ports"]["udp"])

    def send_line(self, line: str) -> None:
        """Write a raw line (for malformed-input tests)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def send(self, cmd: str, **args: Any) -> str:
        """Send a command, return its id without waiting."""
        msg_id = self._ids.next()
        self.send_line(rpc.encode(rpc.command(cmd, msg_id, **args)).rstrip("\n"))
        return msg_id

    def reply(self, msg_id: str, timeout: float = 10) -> rpc.Reply:
        """Wait for the reply to `msg_id`."""

        def find() -> rpc.Reply | None:
            self._check_alive()
            with self._lock:
                for m in self.messages:
                    if isinstance(m, rpc.Reply) and m.id == msg_id:
                        return m
            return None

        return wait_until(find, timeout=timeout, what=f"{self.name}: reply to {msg_id}")

    def reply_order(self) -> list[str]:
        """The ids of the replies received so far, in the order the engine sent them."""
        with self._lock:
            return [m.id or "" for m in self.messages if isinstance(m, rpc.Reply)]

    def request(self, cmd: str, timeout: float = 10, **args: Any) -> dict[str, Any]:
        """Send a command and return its result.

        Raises:
            EngineError: the engine said no (its message is in the exception).
        """
        r = self.reply(self.send(cmd, **args), timeout)
        if not r.ok:
            raise EngineError(f"{cmd}: {r.error_code}: {r.error_message}")
        return r.result

    def events(self, name: str) -> list[dict[str, Any]]:
        """Every event `name` so far, oldest first."""
        with self._lock:
            return [m.data for m in self.messages if isinstance(m, rpc.Event) and m.event == name]

    def wait_event(
        self,
        name: str,
        match: Callable[[dict[str, Any]], bool] = lambda d: True,
        timeout: float = 10,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first event `name` (from index `after` on) satisfying `match`."""

        def find() -> dict[str, Any] | None:
            self._check_alive(name)
            for d in self.events(name)[after:]:
                if match(d):
                    return d
            return None

        return wait_until(find, timeout=timeout, what=f"{self.name}: event {name}")

    def wait_call_state(self, call: str, state: str, timeout: float = 10) -> dict[str, Any]:
        """Wait until `call` reaches `state`."""
        return self.wait_event(
            "call_state", lambda d: d["call"] == call and d["state"] == state, timeout
        )

    def _check_alive(self, waiting_for: str = "") -> None:
        if self.proc.poll() is not None and waiting_for != "stopped":
            raise AssertionError(
                f"{self.name} engine exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}"
            )

    def log_text(self) -> str:
        """The engine's stderr so far."""
        return self.log_path.read_text(errors="replace")

    def close(self) -> int:
        """Shut down cleanly (shutdown command, then wait); kill only if it hangs.

        Returns:
            the exit status (0 for a clean shutdown).
        """
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.send("shutdown")
            try:
                self.proc.wait(timeout=deadline(15))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        self._log.close()
        return int(self.proc.returncode)
