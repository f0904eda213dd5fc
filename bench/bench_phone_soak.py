"""Memory over a shift: 500 calls in a row through one engine, SIPp as the far end.

Prints the engine's RSS after call 10 (warm: codecs, pools and caches allocated) and after
call 500. Target: within 5%. The far end is a SIPp UAS streaming u-law; each call carries
audio both ways for a moment before the hang-up, so per-call media ports, streams, the
bridge connections and the Python objects keyed by call id are all exercised.

    .venv/bin/python bench/bench_phone_soak.py [--calls 500]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.phone import peers
from tests.phone.soak import one_call, rss_kib, soak_rig

# RTP ports of its own, away from the 20000-36000 ranges the phone tests pick per pid: a soak
# running next to pytest once lost a call's audio to a colliding test engine.
peers._rtp_bases = itertools.count(50000, 40)


def main() -> int:
    """Run the calls; print RSS at call 10, every 100 calls and at the end."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    n = ap.parse_args().calls
    t0 = time.monotonic()
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
