"""The phone engine: one thread owns pjsua2 (STYLE.md habit 8).

`Engine.run()` is called on the thread that will be the only one to touch pjsua2: it creates
the library with `threadCnt=0` (no SIP worker threads), then loops on `libHandleEvents`,
running queued commands, posted callback data and timers between polls. Other threads talk
to it only through `submit()` (commands) and the `emit` callback (replies/events out), so no
lock is ever held around a pjsua2 call and no SWIG object is destroyed on a foreign thread.

Shutdown destroys calls, the bridge port and accounts before `libDestroy()` on this same
thread; done in another order or on another thread, PJSIP asserts at exit.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from softphone import rpc
from softphone.account import TRANSPORTS, SoftAccount
from softphone.backend import AudioBackend
from softphone.bridge import AudioBridge
from softphone.calls import MAX_CALLS, SoftCall
from softphone.diag import DiagHandlers
from softphone.dispatch import CommandDispatch
from softphone.errors import EngineError
from softphone.events import CallEvents
from softphone.features import FeatureHandlers
from softphone.handlers import CommandHandlers
from softphone.netwatch import NetWatch
from softphone.network import NetworkHandlers

log = logging.getLogger(__name__)
pjlog = logging.getLogger("softphone.pjsip")

Emit = Callable[[rpc.Message], None]

#: Codec name -> priority (0 disables); see Engine._set_codec_priorities.
CODEC_PRIORITY = {"G722": 200, "PCMU": 190, "PCMA": 180}


@dataclass
class EngineOptions:
    """How one engine instance binds: give each engine on a host its own RTP range."""

    bind: str = "0.0.0.0"
    sip_port: int = 0  # 0: any free port (reported in the `ready` event)
    tls_port: int = 0
    tls_cert: str = ""  # PEM certificate (+ key) to accept TLS; empty: TLS as a client only
    tls_key: str = ""
    tls_ca: str = ""  # CA list to verify the server (the PBX) with
    tls_verify: bool = False  # refuse a server whose certificate does not verify
    rtp_port: int = 40000
    rtp_range: int = 200
    clock_rate: int = 16000
    log_level: int = 3
    user_agent: str = "Switchboard softphone"
    quality_interval: float = 5.0
    net_poll: float = 3.0  # seconds between network/wake checks; 0: only the UI's word
    loop_ms: int = 10
    codecs: tuple[str, ...] = tuple(CODEC_PRIORITY)  # offered, best first (a site's choice)


class _PjLogWriter(pj.LogWriter):
    """PJSIP's log into Python logging (stderr), never stdout: stdout carries the protocol."""

    def write(self, entry: Any) -> None:
        msg = str(entry.msg).rstrip()
        level = (
            logging.WARNING
            if entry.level <= 1
            else (logging.INFO if entry.level <= 3 else logging.DEBUG)
        )
        pjlog.log(level, "%s", msg)


class _Endpoint(pj.Endpoint):
    """`pj.Endpoint` with the one endpoint callback the engine needs: a STUN check's result.

    Like every callback it only copies the data out and posts it to the loop.
    """

    def __init__(self, post: Callable[[str, dict[str, Any]], None]) -> None:
        super().__init__()
        self._post = post

    def onNatCheckStunServersComplete(self, prm: Any) -> None:  # noqa: N802
        self._post("_stun_checked", {"status": int(prm.status), "server": str(prm.name)})


class Engine(
    CommandDispatch, CommandHandlers, CallEvents, FeatureHandlers, NetworkHandlers, DiagHandlers
):
    """The engine. Construct anywhere; call `run()` on the thread that shall own pjsua2."""

    def __init__(self, options: EngineOptions, backend: AudioBackend, emit: Emit) -> None:
        self.options = options
        self.backend = backend
        backend.listener = self.post  # hot-plug and device errors reach the UI as events
        self._emit = emit
        self._commands: queue.SimpleQueue[rpc.Command] = queue.SimpleQueue()
        self._posted: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self._timers: list[tuple[float, Callable[[], None]]] = []
        self._stopping = False
        self._owner: threading.Thread | None = None
        self.ep: Any = None
        self.bridge: AudioBridge | None = None
        self.accounts: dict[str, SoftAccount] = {}
        self.calls: dict[str, SoftCall] = {}
        self._leaked: list[tuple[Any, Any]] = []  # only with SWITCHBOARD_PROVOKE_LEAK=1
        self.transports: dict[str, int] = {}
        self.local_ports: dict[str, int] = {}
        self._call_counter = 0
        self._log_writer: _PjLogWriter | None = None
        self._last_quality = 0.0
        self.netwatch: NetWatch | None = None
        self.started = threading.Event()

    # Threads other than the owner ------------------------------------------------------
    def submit(self, command: rpc.Command) -> None:
        """Queue a command (any thread); the reply comes through `emit`."""
        self._commands.put(command)

    def post(self, kind: str, data: dict[str, Any]) -> None:
        """Queue callback data (any thread, including the media clock's)."""
        self._posted.put((kind, data))

    # The owner thread ------------------------------------------------------------------
    def run(self) -> None:
        """Create the library, loop until `shutdown`, destroy everything. Blocks."""
        self._owner = threading.current_thread()
        try:
            self._start()
        except Exception as exc:
            log.exception("engine failed to start")
            self._emit(
                rpc.Event(
                    "error",
                    {"code": "internal", "message": f"the phone engine could not start: {exc}"},
                )
            )
            self._destroy()
            self._emit(rpc.Event("stopped", {"reason": "start failed"}))
            raise
        self.started.set()
        self.start_network_watch(self.options.net_poll)
        try:
            while not self._stopping:
                self.ep.libHandleEvents(self.options.loop_ms)
                self._drain()
        finally:
            self._destroy()
            self._emit(rpc.Event("stopped", {"reason": "shutdown"}))

    def call_pj(self, fn: Callable[..., Any], *args: Any, what: str = "") -> Any:
        """The one door into pjsua2 for command handlers: checks the thread, turns pj.Error
        into an EngineError with words.

        Raises:
            EngineError: PJSIP refused (code "sip_error").
        """
        assert threading.current_thread() is self._owner, "pjsua2 touched off the engine thread"
        try:
            return fn(*args)
        except pj.Error as exc:
            raise EngineError(
                "sip_error", f"{what or 'SIP operation'} failed: {exc.reason} ({exc.status})"
            ) from exc

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run `fn` on the engine thread after `delay` seconds."""
        self._timers.append((time.monotonic() + delay, fn))

    def emit_event(self, name: str, data: dict[str, Any]) -> None:
        """Send an event to the UI."""
        self._emit(rpc.Event(name, data))

    def _start(self) -> None:
        o = self.options
        self.ep = _Endpoint(self.post)
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.userAgent = o.user_agent
        cfg.uaConfig.maxCalls = MAX_CALLS
        # A STUN server that does not answer is an error the agent hears about (register
        # refuses it in words), not a silent fallback to a private address that leaves
        # remote workers with one-way audio.
        cfg.uaConfig.stunIgnoreFailure = False
        cfg.logConfig.level = o.log_level
        cfg.logConfig.consoleLevel = o.log_level
        self._log_writer = _PjLogWriter()
        cfg.logConfig.writer = self._log_writer
        cfg.logConfig.decor = 0
        cfg.medConfig.clockRate = o.clock_rate
        cfg.medConfig.sndClockRate = o.clock_rate
        cfg.medConfig.channelCount = 1
        cfg.medConfig.ecTailLen = 0  # no sound device: pjsua's canceller never sees audio
        cfg.medConfig.noVad = True
        self.ep.libInit(cfg)
        self._create_transport("udp", o.sip_port)
        self._create_transport("tcp", o.sip_port)
        if o.tls_cert:
            self._create_transport("tls", o.tls_port)
        self.ep.libStart()
        self._set_codec_priorities()
        self.ep.audDevManager().setNullDev()
        self.bridge = AudioBridge(self.backend, o.clock_rate)
        self.emit_event(
            "ready",
            {
                "version": self.ep.libVersion().full,
                "sip_ports": dict(self.local_ports),
                "rtp_port": o.rtp_port,
                "rtp_range": o.rtp_range,
                "backend": self.backend.name,
                "clock_rate": o.clock_rate,
                "fast_frame_copy": self.bridge.fast_copy,
                "native_audio": self.bridge.native is not None,
            },
        )

    def _set_codec_priorities(self) -> None:
        """Offer what contact-center PBXs and carriers speak: G.722 (wideband), then G.711.

        Speex, iLBC and GSM stay off: no PBX we meet wants them, and Speex mangles tones.
        """
        unknown = [c for c in self.options.codecs if c not in CODEC_PRIORITY]
        if unknown:
            raise ValueError(f"unsupported codec(s) {unknown}: choose from {list(CODEC_PRIORITY)}")
        wanted = {name: 200 - 10 * i for i, name in enumerate(self.options.codecs)}
        for info in self.ep.codecEnum2():
            cid = str(info.codecId)
            self.ep.codecSetPriority(cid, wanted.get(cid.split("/")[0], 0))

    def _create_transport(self, kind: str, port: int) -> int:
        types = {
            "udp": pj.PJSIP_TRANSPORT_UDP,
            "tcp": pj.PJSIP_TRANSPORT_TCP,
            "tls": pj.PJSIP_TRANSPORT_TLS,
        }
        tcfg = pj.TransportConfig()
        tcfg.port = port
        if kind == "tls":
            o = self.options
            tcfg.tlsConfig.certFile = o.tls_cert
            tcfg.tlsConfig.privKeyFile = o.tls_key or o.tls_cert
            tcfg.tlsConfig.CaListFile = o.tls_ca
            tcfg.tlsConfig.verifyServer = o.tls_verify
        if self.options.bind not in ("", "0.0.0.0"):
            tcfg.boundAddress = self.options.bind
        tid = int(self.ep.transportCreate(types[kind], tcfg))
        info = self.ep.transportGetInfo(tid)
        self.transports[kind] = tid
        self.local_ports[kind] = int(str(info.localName).rsplit(":", 1)[1])
        log.info("%s transport on %s", kind, info.localName)
        return tid

    def transport_for(self, kind: str) -> int:
        """The transport id for "udp"/"tcp"/"tls", creating TLS on first use.

        Raises:
            EngineError: unknown transport or TLS cannot be created.
        """
        if kind not in TRANSPORTS:
            raise EngineError("bad_args", f"transport must be one of {', '.join(TRANSPORTS)}")
        if kind not in self.transports:
            self.call_pj(
                self._create_transport,
                kind,
                self.options.tls_port,
                what="creating the TLS transport",
            )
        return self.transports[kind]

    def new_call_key(self) -> str:
        """A fresh engine-wide call id."""
        self._call_counter += 1
        return f"call{self._call_counter}"

    def new_call(self, acc: Any, call_id: int = -1) -> SoftCall:
        """A SoftCall registered with the engine (outgoing, incoming or transferred)."""
        call = SoftCall(acc, self.new_call_key(), self.post, call_id, adopt=self.new_call)
        self.calls[call.key] = call
        return call

    def _on_incoming(self, acc: SoftAccount, call_id: int, message: str) -> None:
        # Inside onIncomingCall: the Call object must exist before the callback returns.
        call = self.new_call(acc, call_id)
        self.post("_incoming", {"call": call.key, "message": message})

    def _drain(self) -> None:
        while True:
            try:
                kind, data = self._posted.get_nowait()
            except queue.Empty:
                break
            try:
                self.handle_posted(kind, data)
            except Exception as exc:
                log.exception("handling %s failed", kind)
                self.emit_event("error", {"code": "internal", "message": f"{kind}: {exc}"})
        while not self._stopping:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                break
            self._run_command(cmd)
        now = time.monotonic()
        if self._timers:
            due = [t for t in self._timers if t[0] <= now]
            self._timers = [t for t in self._timers if t[0] > now]
            for _, fn in due:
                try:
                    fn()
                except Exception as exc:
                    log.exception("timer failed")
                    self.emit_event("error", {"code": "internal", "message": str(exc)})
        if now - self._last_quality >= self.options.quality_interval:
            self._last_quality = now
            self.report_quality()

    def stop(self) -> None:
        """Leave the loop after this iteration (engine thread; `shutdown` calls it)."""
        self._stopping = True

    def _destroy(self) -> None:
        """Calls, then ports, then accounts, then the library: all on this thread."""
        self.stop_network_watch()
        self.cancel_stun_check("the phone engine stopped before the STUN server answered")
        ep = self.ep
        if ep is None:
            return
        try:
            if self.calls:
                ep.hangupAllCalls()
                end = time.monotonic() + 2.0
                while time.monotonic() < end and any(c.isActive() for c in self.calls.values()):
                    ep.libHandleEvents(10)
            self.calls.clear()
            if self.bridge is not None:
                # Stop the conference clock first: the port's callbacks run on the clock's
                # thread, and deleting the Python port while one is in flight crashes (the
                # director calls into a half-destroyed object). No clock, no callbacks.
                ep.audDevManager().setNoDev()
                self.bridge.destroy()
                self.bridge = None
            self._leaked.clear()  # after the clock stopped, like the bridge port
            for acc in self.accounts.values():
                acc.shutdown()
            self.accounts.clear()
            while not self._posted.empty():  # drop callback data that refers to dead objects
                self._posted.get_nowait()
        except Exception:
            log.exception("error while tearing down; destroying the library anyway")
        finally:
            self.backend.close()
            ep.libDestroy()
            self.ep = None
            self._log_writer = None
