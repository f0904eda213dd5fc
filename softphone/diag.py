"""The `diag` command: live object counts, so a leak shows as a number instead of as RSS.

RSS over many calls is noisy (allocator arenas, PJSIP pools growing to their high-water mark,
a loaded machine), so the default test run cannot assert on it. What leaks in practice is a
*thing*: a Call or conference port kept after the call ended, a recorder never destroyed, an
entry left in a dict keyed by call id. Those are countable exactly, from three places that
can disagree:

- the engine's own tables (`engine`): calls, accounts, recorders, timers, queued callback data;
- pjsua's view (`pjsua`): calls it still holds, conference ports (`mediaActivePorts`, one
  per call stream, player, recorder, tone generator and our headset port), transports;
- Python's view (`python`): live SWIG wrapper objects by class, found by the garbage
  collector, which catches a wrapper kept alive by a stray reference after pjsua let go.

After a call has ended and the conference has removed its ports (asynchronously, on the media
clock), every count is back to what it was before the call.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from softphone.account import SoftAccount
from softphone.calls import MAX_CALLS, SoftCall

if TYPE_CHECKING:
    import queue
    from collections.abc import Callable

    from softphone.backend import AudioBackend
    from softphone.bridge import AudioBridge
    from softphone.netwatch import NetWatch

_LIB_STATES = {
    getattr(pj, name): name.removeprefix("PJSUA_STATE_").lower()
    for name in dir(pj)
    if name.startswith("PJSUA_STATE_")
}

#: Wrapper classes whose live instances are counted (subclasses count as their base).
WATCHED: dict[str, type] = {
    "SoftCall": SoftCall,
    "SoftAccount": SoftAccount,
    "AudioMediaPort": pj.AudioMediaPort,
    "AudioMediaRecorder": pj.AudioMediaRecorder,
    "AudioMediaPlayer": pj.AudioMediaPlayer,
    "ToneGenerator": pj.ToneGenerator,
}


def python_objects() -> dict[str, int]:
    """Live instances of each WATCHED class, as the garbage collector sees them.

    SWIG proxies are ordinary tracked Python objects, so `gc.get_objects()` finds every one
    still referenced from anywhere (a few ms: fine for a diagnostic, not for the hot path).
    """
    counts = dict.fromkeys(WATCHED, 0)
    for obj in gc.get_objects():
        for name, cls in WATCHED.items():
            if isinstance(obj, cls):
                counts[name] += 1
    return counts


class DiagHandlers:
    """`cmd_diag`; mixed into `Engine`."""

    if TYPE_CHECKING:
        accounts: dict[str, SoftAccount]
        calls: dict[str, SoftCall]
        bridge: AudioBridge | None
        backend: AudioBackend
        transports: dict[str, int]
        ep: Any
        netwatch: NetWatch | None
        _timers: list[tuple[float, Callable[[], None]]]
        _posted: queue.SimpleQueue[tuple[str, dict[str, Any]]]
        _leaked: list[tuple[Any, Any]]

        def call_pj(self, fn: Callable[..., Any], *args: Any, what: str = "") -> Any: ...

    def cmd_diag(self, ports: bool = False) -> dict[str, Any]:
        """Live object counts (engine, pjsua, Python); `ports` adds the conference port names.

        Compare two replies taken while idle: any count that grew is a leak.
        """
        ep = self.ep
        # Call ids run 0..maxCalls-1; looking up one beyond aborts the process (an assert).
        lookup = pj.Call.lookup
        pjsua_calls = sum(1 for i in range(MAX_CALLS) if self.call_pj(lookup, i) is not None)
        pjsua_accounts = sum(
            1 for acc in self.accounts.values() if acc.isValid() and acc.getId() >= 0
        )
        out: dict[str, Any] = {
            "lib_state": _LIB_STATES.get(ep.libGetState(), str(ep.libGetState())),
            "engine": {
                "calls": len(self.calls),
                "accounts": len(self.accounts),
                "transports": len(self.transports),
                "recorders": sum(1 for c in self.calls.values() if c.recorder is not None),
                "conferenced": sum(len(c.conferenced) for c in self.calls.values()),
                "timers": len(self._timers),
                "posted": self._posted.qsize(),
                "leaked": len(self._leaked),
            },
            "pjsua": {
                "calls": pjsua_calls,
                "accounts": pjsua_accounts,
                "conf_ports": int(ep.mediaActivePorts()),
                "conf_max_ports": int(ep.mediaMaxPorts()),
                "transports": len(self.call_pj(ep.transportEnum, what="listing transports")),
            },
            "python": python_objects(),
            "network": {
                "watching": self.netwatch is not None,
                "routes": self.netwatch.routes if self.netwatch is not None else {},
            },
            "audio": {
                "capturing": self.backend.capturing,
                "ringing": self.backend.ringing,
                "tone": self.bridge.tone if self.bridge is not None else None,
            },
        }
        if ports:
            out["pjsua"]["port_names"] = sorted(
                str(m.getPortInfo().name)
                for m in self.call_pj(ep.mediaEnumPorts2, what="listing ports")
            )
        return out
