"""Short soak: calls in a row must not grow the engine's memory per call.

RSS is noisy (allocator arenas, PJSIP pools growing to their high-water mark in the first
~30 calls), so a fixed bound would either hide a leak or fail on noise. The bound is
computed in the same run: a sanity check first runs the engine with
SWITCHBOARD_PROVOKE_LEAK=1, which keeps every ended call and one conference port per call
(the shape of the leaks we fear: SWIG objects, per-call ports, dicts keyed by call id), and
measures what that costs per call. The real run must then grow by less than three quarters of what
that leak would add over the same calls. Measured here: the provoked leak costs about
10 KiB per call, the real engine about 1 KiB (an allocator step now and then: hence 3/4,
not 1/2, of the leak as the bound). The full shift is bench/bench_phone_soak.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.phone.soak import one_call, rss_kib, soak_rig

pytestmark = [
    pytest.mark.phone,
    pytest.mark.long,
    # RSS in a loaded full-suite run moved 8.9 KiB per call over 60 calls (0.3 in isolation),
    # as much as the provoked leak: too close to noise for the default run. It runs with
    # SWITCHBOARD_LONG=1; the default run counts live calls, ports and objects through the
    # engine's `diag` command instead (tests/phone/test_diag.py), which is exact.
    pytest.mark.skipif(
        os.environ.get("SWITCHBOARD_LONG") != "1",
        reason="RSS soak: long variant, run with SWITCHBOARD_LONG=1",
    ),
]

WARM = 20  # calls before the first measurement (pools and caches reach their size)
MEASURED = 60  # calls between the two measurements: an allocator step of ~130 KiB is
# ~2 KiB per call here, well under the bound, while a real per-call leak grows with the calls


def _growth_per_call(work: Path, leak: bool, measured: int) -> float:
    """KiB of RSS per call over `measured` calls after WARM warm-up calls."""
    work.mkdir()
    env = {"SWITCHBOARD_PROVOKE_LEAK": "1"} if leak else None
    with soak_rig(work, WARM + measured, env=env) as (engine, sipp):
        for i in range(WARM + measured):
            one_call(engine, sipp)
            if i + 1 == WARM:
                start = rss_kib(engine.proc.pid)
        end = rss_kib(engine.proc.pid)
    return (end - start) / measured


@pytest.mark.timeout(240)
def test_calls_in_a_row_do_not_grow_memory_per_call(tmp_path: Path) -> None:
    leaked = _growth_per_call(tmp_path / "leak", leak=True, measured=15)
    assert leaked > 4, f"the provoked leak is not measurable ({leaked:.1f} KiB/call)"
    real = _growth_per_call(tmp_path / "real", leak=False, measured=MEASURED)
    print(f"provoked leak {leaked:.1f} KiB/call; real run {real:.1f} KiB/call")
    assert real < leaked * 0.75, (
        f"the engine grows {real:.1f} KiB per call; a leaked call + port is {leaked:.1f}"
    )
