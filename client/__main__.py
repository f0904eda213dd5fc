"""`python -m client` / `switchboard`: the agent desktop.

Options: `--router-url URL` (a central router; password from the keychain or a login
dialog), `--data-dir DIR`, `--self-test` (headless round trip, exit 0 or a reason).
With no options the app starts an embedded router with demo data.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from types import TracebackType

log = logging.getLogger("client")

NO_DISPLAY = (
    "switchboard: no display found (DISPLAY and WAYLAND_DISPLAY are unset); "
    "run it under a virtual display: xvfb-run -a ./dev run"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="switchboard", description=__doc__.splitlines()[0])
    p.add_argument("--router-url", help="connect to this router instead of the embedded one")
    p.add_argument("--data-dir", type=Path, help="where the cache and router data live")
    p.add_argument(
        "--self-test",
        action="store_true",
        help="start everything headless, check a message round trip, exit 0 or non-zero",
    )
    p.add_argument("--self-test-timeout", type=float, default=90.0, help="seconds (default 90)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p.parse_args(argv)


def has_display() -> bool:
    """False on Linux with no X11/Wayland display and no explicit Qt platform."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(
        os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM")
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run-router"]:  # the frozen bundle runs its embedded router this way
        from router.__main__ import main as router_main

        return router_main(argv[1:])
    # The phone engine is a child process (client/phone/engine_process.py runs
    # `<interpreter> -m softphone rpc ...`); in the frozen bundle the interpreter is this
    # executable, so both spellings start the engine here instead of a second window.
    if argv[:1] == ["--run-phone"] or argv[:2] == ["-m", "softphone"]:
        from softphone.__main__ import main as phone_main

        return phone_main(argv[1:] if argv[:1] == ["--run-phone"] else argv[2:])
    args = parse_args(argv)
    if args.self_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    elif not has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.self_test:
        return _self_test(args)
    return _run(args)


def _application() -> object:
    from client.qt import QApplication
    from client.theme import apply_theme, set_names

    set_names()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    apply_theme(app)
    return app


def _log_to_file(data_dir: Path | None) -> Path:
    """Also log to <data dir>/logs/switchboard.log: a desktop app's stderr goes nowhere, and
    "details are in the log" must be true. Rotated, so it never fills the disk."""
    from logging.handlers import RotatingFileHandler

    from client.app import default_data_dir

    folder = (data_dir or default_data_dir()) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "switchboard.log"
    handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return path


def _quit_on_signals() -> None:
    """SIGINT/SIGTERM (Ctrl+C in a terminal, a session logout) quit through Qt, so shutdown
    runs and the embedded router is stopped instead of being orphaned."""
    import signal

    from client.qt import QApplication, QTimer

    def quit_app(signum: int, _frame: object) -> None:
        log.info("received signal %s, quitting", signum)
        QApplication.quit()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, quit_app)
    # Python runs signal handlers only between bytecodes: wake the interpreter now and then.
    timer = QTimer(QApplication.instance())
    timer.timeout.connect(lambda: None)
    timer.start(250)


def _run(args: argparse.Namespace) -> int:
    from client.app import AppController, Options
    from client.qt import QApplication

    _application()
    log_path = _log_to_file(args.data_dir)
    controller = AppController(Options(data_dir=args.data_dir, router_url=args.router_url))
    QApplication.instance().aboutToQuit.connect(controller.shutdown)  # type: ignore[union-attr]

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        # An unexpected error in a slot: logged in full, and told to the agent in words.
        log.error("unexpected error", exc_info=(kind, exc, tb))
        controller.window.status.notify(
            f"Something went wrong: {exc}. Details are in the log ({log_path})."
        )

    sys.excepthook = hook
    _quit_on_signals()
    controller.start()
    return QApplication.exec()


def _self_test(args: argparse.Namespace) -> int:
    from client.app import AppController, Options
    from client.qt import QApplication
    from client.self_test import SelfTest

    _application()
    tmp = None
    data_dir = args.data_dir
    if data_dir is None:  # never touch the agent's real data
        tmp = tempfile.mkdtemp(prefix="switchboard-self-test-")
        data_dir = Path(tmp)
    controller = AppController(Options(data_dir=data_dir, router_url=args.router_url))
    test = SelfTest(controller, args.self_test_timeout)
    errors: list[str] = []

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("unexpected error", exc_info=(kind, exc, tb))
        errors.append(f"{kind.__name__}: {exc}")
        QApplication.exit(1)

    sys.excepthook = hook
    try:
        controller.start()
        test.start()
        code = QApplication.exec()
    finally:
        controller.shutdown()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if errors:
        print(f"self-test FAILED: unexpected error: {errors[0]}")
        return 1
    if test.code == 0 and code == 0:
        print(f"self-test passed: {test.reason}")
        return 0
    print(f"self-test FAILED: {test.reason or f'exit code {code}'}")
    return test.code or code or 1


if __name__ == "__main__":
    sys.exit(main())
