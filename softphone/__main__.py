"""switchboard-phone: the phone engine as a process.

    switchboard-phone rpc [--backend qt|wav|null] ...    JSON lines on stdio (what the app runs)
    switchboard-phone register --user U --domain D       register once, print the outcome
    switchboard-phone dial TARGET --user U --domain D --play in.wav --record out.wav
    switchboard-phone answer --user U --domain D --record out.wav
    switchboard-phone devices                            list capture/playback devices

The password comes from SWITCHBOARD_SIP_PASSWORD (or --password, which other users of the
machine can see in the process list). Logs go to stderr; in rpc mode stdout carries only
protocol lines.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from softphone import rpc
from softphone.backend import AudioBackend
from softphone.cli import Driver, run_script
from softphone.engine import CODEC_PRIORITY, Engine, EngineOptions

log = logging.getLogger("softphone")


def default_backend() -> str:
    """The headset backend of a desktop: PulseAudio's own streams on Linux (lower mouth-to-ear
    latency and less CPU than Qt's, measured in docs/architecture.md), QtMultimedia elsewhere
    or when libpulse is missing."""
    from softphone import pulse_client

    return "pulse" if sys.platform.startswith("linux") and pulse_client.available() else "qt"


def _backend(args: argparse.Namespace) -> AudioBackend:
    from softphone.backend_wav import WavBackend

    backend = args.backend
    if backend == "auto":
        backend = default_backend()
    if backend == "pulse":
        from softphone.backend_pulse import PulseBackend  # Qt only when asked for

        return PulseBackend(args.clock_rate)
    if backend == "qt":
        from softphone.backend_qt import QtBackend

        return QtBackend(args.clock_rate)
    mic = Path(args.mic) if getattr(args, "mic", None) else None
    speaker = Path(args.speaker) if getattr(args, "speaker", None) else None
    return WavBackend(args.clock_rate, mic, speaker, loop=not args.no_loop)


def _options(args: argparse.Namespace) -> EngineOptions:
    return EngineOptions(
        tls_port=args.tls_port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca,
        tls_verify=args.tls_verify,
        bind=args.bind,
        sip_port=args.sip_port,
        rtp_port=args.rtp_port,
        rtp_range=args.rtp_range,
        clock_rate=args.clock_rate,
        log_level=args.pj_log_level,
        quality_interval=args.quality_interval,
        net_poll=args.net_poll,
        codecs=tuple(c.strip() for c in args.codecs.split(",") if c.strip()),
    )


def run_rpc(args: argparse.Namespace) -> int:
    """Serve the JSON-lines protocol on stdin/stdout until shutdown or stdin closes."""
    out_lock = threading.Lock()
    # PJSIP prints to fd 1 before our log writer is installed (libCreate): keep a private
    # copy of stdout for the protocol and point fd 1 at stderr, so nothing else can corrupt it.
    sys.stdout.flush()
    stdout = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    ui_gone = threading.Event()

    def emit(message: rpc.Message) -> None:
        line = rpc.encode(message)
        with out_lock:
            if ui_gone.is_set():
                return
            try:
                stdout.write(line)
                stdout.flush()
            except (BrokenPipeError, ValueError, OSError) as exc:
                # The UI died or closed our stdout: nobody to talk to. Hang up and unregister
                # cleanly rather than crash with calls up.
                ui_gone.set()
                log.warning("the UI stopped reading (%s): shutting down", exc)
                engine.submit(rpc.command("shutdown", "stdout-closed"))

    engine = Engine(_options(args), _backend(args), emit)

    def reader() -> None:
        for raw in sys.stdin.buffer:
            if not raw.strip():
                continue
            try:
                msg = rpc.decode(raw)
            except rpc.ProtocolError as exc:
                emit(rpc.error(exc.msg_id, exc.code, str(exc)))
                continue
            if not isinstance(msg, rpc.Command):
                emit(rpc.error(None, "malformed", "the engine accepts only commands"))
                continue
            engine.submit(msg)
        log.info("stdin closed: shutting down")
        engine.submit(rpc.command("shutdown", "stdin-eof"))

    threading.Thread(target=reader, name="rpc-stdin", daemon=True).start()
    code = 0
    try:
        engine.run()
    except Exception:
        log.exception("engine stopped on an error")
        code = 1
    # The stdin reader is blocked in read(); interpreter finalisation would abort on its
    # buffer lock ("_enter_buffered_busy"). The library is destroyed and stdout flushed:
    # leave without finalising.
    with out_lock, contextlib.suppress(OSError, ValueError):
        stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_event(ev: rpc.Event) -> None:
    data = ", ".join(f"{k}={v}" for k, v in ev.data.items() if k != "audio")
    print(f"{ev.event}: {data}", flush=True)


def _register(d: Driver, args: argparse.Namespace, wait: bool = True) -> bool:
    password = args.password or os.environ.get("SWITCHBOARD_SIP_PASSWORD", "")
    d.request(
        "register",
        user=args.user,
        domain=args.domain,
        password=password,
        registrar=args.registrar,
        proxy=args.proxy or None,
        transport=args.transport,
    )
    if not wait or args.registrar == "":
        return True
    st = d.wait_event("reg_state", 15, lambda e: e["state"] in ("Registered", "Failed"))
    return bool(st["state"] == "Registered")


def _hold_call(d: Driver, key: str, duration: float) -> None:
    try:
        d.wait_event(
            "call_state", duration, lambda e: e["call"] == key and e["state"] == "disconnected"
        )
    except Exception:
        d.request("hangup", call=key)
        d.wait_event("call_state", 10, lambda e: e["call"] == key and e["state"] == "disconnected")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `switchboard-phone`."""
    p = argparse.ArgumentParser(
        prog="switchboard-phone",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=("wav", "qt", "pulse", "auto", "null"), default="wav")
    common.add_argument("--mic", help="WAV file to send as the microphone (wav backend)")
    common.add_argument("--speaker", help="WAV file to record what is heard (wav backend)")
    common.add_argument("--no-loop", action="store_true", help="play the mic file once")
    common.add_argument("--bind", default="0.0.0.0")
    common.add_argument("--sip-port", type=int, default=0)
    common.add_argument("--tls-port", type=int, default=0)
    common.add_argument("--tls-cert", default="", help="PEM certificate to accept SIP over TLS")
    common.add_argument("--tls-key", default="", help="its private key (default: in the cert)")
    common.add_argument("--tls-ca", default="", help="CA file to verify the PBX's certificate")
    common.add_argument("--tls-verify", action="store_true", help="refuse unverified servers")
    common.add_argument("--rtp-port", type=int, default=40000)
    common.add_argument("--rtp-range", type=int, default=200)
    common.add_argument("--clock-rate", type=int, default=16000)
    common.add_argument(
        "--codecs",
        default=",".join(CODEC_PRIORITY),
        help="codecs to offer, best first (G722, PCMU, PCMA); e.g. PCMU for narrowband only",
    )
    common.add_argument("--pj-log-level", type=int, default=3)
    common.add_argument("--quality-interval", type=float, default=5.0)
    common.add_argument(
        "--net-poll",
        type=float,
        default=3.0,
        help="seconds between checks for a network change or a wake from sleep (0: off)",
    )
    common.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="mode", required=True)
    sub.add_parser("rpc", parents=[common], help="JSON lines on stdin/stdout")
    sub.add_parser("devices", parents=[common], help="list audio devices")
    for name in ("register", "dial", "answer"):
        sp = sub.add_parser(name, parents=[common])
        sp.add_argument("--user", required=True)
        sp.add_argument("--domain", required=True)
        sp.add_argument("--password", default="")
        sp.add_argument(
            "--registrar", default=None, help="registrar host (default: the domain; '' for none)"
        )
        sp.add_argument("--proxy", default="")
        sp.add_argument("--transport", default="udp", choices=("udp", "tcp", "tls"))
        if name == "dial":
            sp.add_argument("target")
            sp.add_argument("--dtmf", default="")
        if name in ("dial", "answer"):
            sp.add_argument("--duration", type=float, default=10.0)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.mode == "rpc":
        return run_rpc(args)
    engine_driver = Driver(_print_event)
    engine = Engine(_options(args), _backend(args), engine_driver.emit)
    return run_script(engine, engine_driver, lambda d: _script(d, args))


def _script(d: Driver, args: argparse.Namespace) -> int:
    if args.mode == "devices":
        for kind, devs in d.request("list_devices").items():
            for dev in devs:
                print(f"{kind}: {dev['name']}  [{dev['id']}]{' (default)' * dev['default']}")
        return 0
    ok = _register(d, args)
    if args.mode == "register":
        print("Registered" if ok else "registration failed", flush=True)
        return 0 if ok else 1
    if args.mode == "dial":
        key = d.request("dial", to=args.target)["call"]
        d.wait_event(
            "call_state",
            30,
            lambda e: e["call"] == key and e["state"] in ("confirmed", "disconnected"),
        )
        if args.dtmf:
            d.request("dtmf", call=key, digits=args.dtmf)
        _hold_call(d, key, args.duration)
        return 0
    inc: dict[str, Any] = d.wait_event("incoming_call", 3600)
    d.request("answer", call=inc["call"])
    _hold_call(d, inc["call"], args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
