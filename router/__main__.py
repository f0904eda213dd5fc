"""`python -m router` / `switchboard-router`: run the router until SIGTERM or SIGINT.

The parent process (the desktop app's embedded mode, tests) learns where the router listens
from exactly one stdout line, `SWITCHBOARD_ROUTER_LISTENING http://HOST:PORT`, printed once
the socket is bound and the server accepts connections; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import warnings
from collections.abc import Generator
from pathlib import Path

import uvicorn

from router import gc_schedule
from router.app import create_app
from router.auth import hash_password
from router.channels import ChannelConfigError, install_channels
from router.channels.config import add_channel_args, channels_config
from router.config import RouterConfig, system_clock
from router.config_file import ConfigError, load_config_file, parse_config
from router.demo import PASSWORD_ENV, DemoTraffic, seed_agents
from router.demo_config import DEMO_CONFIG
from router.service import Service
from router.storage import Storage
from sync.protocol import MAX_FRAME_BYTES

log = logging.getLogger("router.main")

LISTENING = "SWITCHBOARD_ROUTER_LISTENING"


def default_db_path() -> Path:
    """The embedded router's database in the user's data directory."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "switchboard" / "router.db"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="switchboard-router", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    p.add_argument(
        "--db", type=Path, default=None, help=f"SQLite database (default {default_db_path()})"
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="seed demo customers and conversations and generate demo traffic",
    )
    p.add_argument(
        "--demo-agents",
        action="store_true",
        help=f"create demo agents ana, ben, chloe; password from ${PASSWORD_ENV}",
    )
    p.add_argument(
        "--demo-rate",
        type=float,
        default=2.0,
        help="new demo conversations per minute (0 = none; default 2)",
    )
    p.add_argument("--demo-seed", type=int, default=None, help="seed of the demo's randomness")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="router config (TOML: queues, skills, agents, codes, hours, strategy);"
        " default: the built-in demo config",
    )
    p.add_argument(
        "--offer-timeout",
        type=float,
        default=None,
        help="seconds to accept an offer (default 20, or the config's)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=None,
        help="seconds a disconnected agent keeps their state (default 60)",
    )
    p.add_argument(
        "--wrap-up-timeout",
        type=float,
        default=None,
        help="seconds of after-contact work before available again (default 30)",
    )
    p.add_argument(
        "--metrics-interval",
        type=float,
        default=1.0,
        help="seconds between live metrics pushes to agents (0 = none; default 1)",
    )
    p.add_argument(
        "--event-retention",
        type=int,
        default=None,
        help="events kept per agent stream; a resume from before them gets a "
        "snapshot (default 5000; pruned at start and every 5 minutes)",
    )
    p.add_argument(
        "--token-ttl",
        type=float,
        default=12 * 3600.0,
        help="seconds a login token is valid (default 43200)",
    )
    p.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="stop when standard input closes (the app that started us died)",
    )
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default INFO",
    )
    add_channel_args(p)
    return p.parse_args(argv)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal capture: we stop it from loop signal handlers,
    so SIGTERM/SIGINT end the process with status 0 after a clean shutdown instead of being
    re-raised."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # A restart on the same port must not wait for the old connections' TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def load_config(args: argparse.Namespace) -> RouterConfig:
    """The config file (or the built-in demo config), then the command-line overrides.

    Raises:
        ConfigError: the file is wrong; the message names the key.
    """
    base = RouterConfig(
        token_ttl=args.token_ttl, metrics_push_interval=max(0.0, args.metrics_interval)
    )
    if args.config is not None:
        config = load_config_file(args.config, base)
    else:
        config = parse_config(DEMO_CONFIG, base, source="built-in demo config")
    if args.offer_timeout is not None:
        config.offer_timeout = args.offer_timeout
    if args.grace is not None:
        config.disconnect_grace = args.grace
    if args.wrap_up_timeout is not None:
        config.wrap_up_timeout = args.wrap_up_timeout
    if args.event_retention is not None:
        if args.event_retention < 1:
            raise ConfigError("--event-retention", "must be at least 1")
        config.event_retention = args.event_retention
    return config


def apply_agents(storage: Storage, config: RouterConfig, now: float) -> None:
    """Create or refresh the config file's agents (a missing password hash keeps the stored
    one; an agent without any cannot log in)."""
    with storage.transaction():
        for agent in config.agents:
            storage.upsert_agent(
                agent.id,
                agent.username,
                agent.name,
                agent.password_hash or "",
                agent.queues,
                agent.capacity or config.capacity,
                now,
                agent.skills,
                agent.supervises,
            )
    log.info("config agents ready: %d", len(config.agents))


async def serve(args: argparse.Namespace, password: str | None) -> int:
    try:
        config = load_config(args)
    except ConfigError as exc:
        log.error("bad router config: %s", exc)
        return 2
    db_path: Path = args.db or default_db_path()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    storage = Storage(db_path)
    if password is not None:
        seed_agents(storage, config, password, system_clock())
    elif args.config is not None:
        apply_agents(storage, config, system_clock())
    service = Service(
        storage,
        config,
        system_clock,
        demo_api=args.demo or args.demo_agents,
        gc_interval=gc_schedule.DEFAULT_INTERVAL,
    )
    if args.demo:
        service.starters.append(DemoTraffic(args.demo_rate, args.demo_seed).start)
    try:
        channel_routes = install_channels(service, channels_config(args))
    except ChannelConfigError as exc:
        log.error("bad channel settings: %s", exc)
        storage.close()
        return 2

    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        log.error("cannot listen on %s port %s: %s", args.host, args.port, exc)
        storage.close()
        return 1
    host, port = sock.getsockname()[:2]
    # Imported here, after main() muted uvicorn's deprecation warning for `--ws websockets`.
    from router.ws_transport import BatchingWebSocketProtocol

    uv_config = uvicorn.Config(
        create_app(service, channel_routes),
        # uvicorn's `websockets` implementation, plus one write for many frames (see there).
        ws=BatchingWebSocketProtocol,
        lifespan="on",
        log_config=None,
        # log_level=None: uvicorn leaves the levels main() set (tokens stay out of DEBUG logs).
        log_level=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        # Frames up to 4x the protocol limit reach us and get a `too_large` error with the
        # connection kept; only absurd frames make the websocket library close it (1009).
        ws_max_size=4 * MAX_FRAME_BYTES,
        # No permessage-deflate: our frames are small JSON events, and compressing each one
        # cost ~15% of the router's CPU at 2,000 agents (profiled with bench/bench_router.py),
        # plus a zlib context per connection.
        ws_per_message_deflate=False,
    )
    server = _Server(uv_config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows: no loop signal handlers
            loop.add_signal_handler(sig, _request_exit, server, sig)
    if args.exit_with_stdin:
        _watch_stdin(loop, server)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if task.done():
        await task
        log.error("the router failed to start")
        return 1
    url_host = f"[{host}]" if ":" in host else host
    print(f"{LISTENING} http://{url_host}:{port}", flush=True)
    log.info("router listening on http://%s:%s (db %s)", url_host, port, db_path)
    await task
    return 0


def _watch_stdin(loop: asyncio.AbstractEventLoop, server: uvicorn.Server) -> None:
    """Stop when our stdin reaches EOF.

    The desktop app starts the embedded router with a pipe on stdin and never writes to it;
    when the app dies, even by kill -9, the kernel closes the pipe, and this is the one signal
    of that which works on every OS (no prctl(PR_SET_PDEATHSIG) on macOS or Windows).
    """

    def wait_for_eof() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside a BufferedReader holds its
        # lock at interpreter shutdown, and CPython aborts (`_enter_buffered_busy`).
        try:
            while os.read(0, 4096):
                pass
        except (OSError, ValueError) as exc:
            log.warning("stdin watch stopped: %s", exc)
        log.info("stdin closed: the app that started the router is gone, shutting down")
        loop.call_soon_threadsafe(_request_exit, server, signal.SIGTERM)

    threading.Thread(target=wait_for_eof, name="stdin-watch", daemon=True).start()


def _request_exit(server: uvicorn.Server, sig: signal.Signals) -> None:
    """SIGTERM asks for a clean shutdown, and asking again changes nothing (a supervisor may
    repeat it); a second SIGINT (Ctrl+C twice) forces the exit, as uvicorn does."""
    log.info("received %s, shutting down", sig.name)
    if server.should_exit and sig == signal.SIGINT:
        server.force_exit = True
    server.should_exit = True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hash-password"]:
        # For the config file's `password_hash`: the password comes from stdin, never argv.
        print(hash_password(sys.stdin.readline().rstrip("\n")))
        return 0
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # At DEBUG the websockets library (through uvicorn's logger) logs request headers, bearer
    # tokens included, and frames, message bodies included: those loggers stay at INFO.
    for name in ("uvicorn.error", "websockets"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger().level))
    # uvicorn marks `ws="websockets"` deprecated in favour of its sans-I/O variant; DESIGN.md
    # asks for this implementation (see docs/operations.md), so the warning is not repeated.
    warnings.filterwarnings("ignore", message=r"The `websockets` implementation is deprecated")
    password: str | None = None
    if args.demo_agents:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            print(
                f"--demo-agents needs the demo agents' password in ${PASSWORD_ENV}", file=sys.stderr
            )
            return 2
    try:
        return asyncio.run(serve(args, password))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
