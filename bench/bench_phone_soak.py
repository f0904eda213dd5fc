"""Memory over a shift: 500 calls in a row through one engine, SIPp as the far end.

Prints the engine's RSS after call 10 (warm: codecs, pools and caches allocated) and after
call 500. Target: within 5%. The far end is a SIPp UAS streaming u-law; each call carries
audio both ways for a moment before the hang-up, so per-call media ports, streams, the
bridge connections and the Python objects keyed by call id are all exercised.

    .venv/bin/python bench/bench_phone_soak.py [--calls 500]
    .venv/bin/python bench/bench_phone_soak.py --ui [--calls 500]

`--ui` measures the app side instead: this process runs the real phone panel and
`PhoneEngineProcess` (offscreen Qt), which start an engine process; each call is dialled from
the panel and hung up from it, so every call's events (call_state, media_state, quality)
reach the widgets, which add and remove a call row. RSS is this (UI) process's.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.phone import peers
from tests.phone.sipp import Sipp, uas_scenario, write_ulaw_tone
from tests.phone.soak import one_call, rss_kib, soak_rig

# RTP ports of its own, away from the 20000-36000 ranges the phone tests pick per pid: a soak
# running next to pytest once lost a call's audio to a colliding test engine.
peers._rtp_bases = itertools.count(50000, 40)


def ui_soak(n: int) -> tuple[int, int]:
    """n calls dialled and hung up from the phone panel; this process's RSS at 10 and n."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from client.phone.engine_process import PhoneEngineProcess
    from client.phone.panel import PhonePanel
    from client.qt import QApplication, QCoreApplication, QEvent

    app = QApplication.instance() or QApplication([])

    def pump_until(cond: Callable[[], bool], what: str, timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while not cond():
            app.processEvents()
            # exec() would run deferred deletes (the removed call rows); processEvents not.
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            if time.monotonic() > end:
                raise TimeoutError(f"waiting for {what}")
            time.sleep(0.002)

    pid = os.getpid()
    at10 = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sipp = Sipp(work, uas_scenario(write_ulaw_tone(work / "t.ul", 1000, 1)))
        sipp.start(extra=["-m", str(n), "-timeout", "3600s"])
        args = ["--bind", "127.0.0.1", "--rtp-port", str(peers.rtp_base()), "--rtp-range", "40"]
        engine = PhoneEngineProcess([*args, "--quality-interval", "0.2"])
        panel = PhonePanel(engine)
        panel.show()
        engine.start()
        try:
            pump_until(lambda: engine.state == "running", "the engine")
            panel.command("register", user="soak", domain="127.0.0.1", registrar="")
            for i in range(1, n + 1):
                panel.number.setText(f"sip:soak@127.0.0.1:{sipp.port}")
                panel.dial()
                pump_until(lambda: any(r.quality.text() for r in panel.rows.values()), "audio")
                (key,) = panel.rows
                panel.command("hangup", call=key)
                pump_until(lambda: not panel.rows, "the row to go")
                if i == 10:
                    at10 = rss_kib(pid)
                if i % 100 == 0 or i in (1, 10, n):
                    print(f"call {i:4d}: UI RSS {rss_kib(pid) / 1024:.1f} MiB", flush=True)
            return at10, rss_kib(pid)
        finally:
            engine.stop()
            sipp.stop()


def main() -> int:
    """Run the calls; print RSS at call 10, every 100 calls and at the end."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--ui", action="store_true", help="measure the UI process (panel) instead")
    opts = ap.parse_args()
    n = opts.calls
    t0 = time.monotonic()
    if opts.ui:
        at10, end = ui_soak(n)
        print(f"\n{n} calls in {time.monotonic() - t0:.0f} s")
        print(f"UI RSS after call 10: {at10 / 1024:.1f} MiB (baseline)")
        print(f"UI RSS after call {n}: {end / 1024:.1f} MiB")
        print(f"ratio: {end / at10:.3f}x ({(end - at10) / at10 * 100:+.1f}%; target within 5%)")
        return 0
    with tempfile.TemporaryDirectory() as tmp, soak_rig(Path(tmp), n) as (engine, sipp):
        pid = engine.proc.pid
        at10 = 0
        for i in range(1, n + 1):
            one_call(engine, sipp)
            if i == 10:
                at10 = rss_kib(pid)
            if i % 100 == 0 or i in (1, 10, n):
                print(f"call {i:4d}: engine RSS {rss_kib(pid) / 1024:.1f} MiB", flush=True)
        end = rss_kib(pid)
    growth = (end - at10) / at10 * 100
    print(f"\n{n} calls in {time.monotonic() - t0:.0f} s")
    print(f"engine RSS after call 10: {at10 / 1024:.1f} MiB (baseline)")
    print(f"engine RSS after call {n}: {end / 1024:.1f} MiB")
    print(f"ratio: {end / at10:.3f}x ({growth:+.1f}%; target within 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
