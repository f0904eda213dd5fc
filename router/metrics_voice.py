"""Inbound calls the PBX rang at an agent, as the router sees them through `call_event`.

Why a separate tracker: the PBX, not the router, queues and routes inbound calls, so these
calls are not tasks and have no fact of their own. What the router does see is every state the
agent's phone reports (`call_event`: ringing, connected, hold, ended...). From that stream this
module tells, per call, whether it rang (an offer to the agent), was answered (handled), or
ended unanswered because the caller gave up (an abandon, with the ring time as abandon time)
or because the agent declined or the ring timed out (offered, not handled). docs/metrics.md
("Voice") has the definitions and what stays invisible.

Durations use the phone's own `at` times (both ends of a ring come from the same clock, so a
skewed clock or a report replayed late from the outbox still gives the right ring time); the
router's fact time only picks the interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router.storage_agents import CALL_OVER_STATES

ANSWER_STATES = frozenset(
    {"connected", "confirmed", "answered", "active", "hold", "held", "on_hold"}
    | {"local_hold", "remote_hold"}
)
"""States that mean the call was answered (a held call was answered first)."""
END_STATES = frozenset(CALL_OVER_STATES)
CALLER_CANCEL = "caller_cancel"
"""`call_event` `reason` of a ring the caller ended (SIP: the INVITE was cancelled, 487)."""


@dataclass(frozen=True)
class CallChange:
    """What one `call` fact adds to the figures: counts, and the ring time of an abandon."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    abandon_time: float = 0.0


def ended_by_caller(state: str, reason: str | None) -> bool:
    """Whether an unanswered ring that ended in `state` with `reason` was the caller giving up.

    `reason` decides when the phone sent one (`caller_cancel` only); without one (an older
    app), only the state `canceled` says so: the old `missed` did not tell a caller who hung
    up from an agent who declined, so it is not counted as an abandon."""
    if reason:
        return reason.lower() == CALLER_CANCEL
    return state == "canceled"


@dataclass
class _Ring:
    rang_at: float
    answered: bool = False


@dataclass
class VoiceCalls:
    """Inbound calls in progress per (agent, call id), fed with `call` facts in log order."""

    _calls: dict[tuple[str, str], _Ring] = field(default_factory=dict)

    def feed(self, fact: Mapping[str, Any], data: Mapping[str, Any]) -> CallChange | None:
        """The change one `call` fact makes, or None (outbound calls, repeats, hold...)."""
        if data.get("direction") != "in" or not data.get("call"):
            return None
        key = (str(fact["agent_id"]), str(data["call"]))
        state = str(data.get("state", "")).lower()
        at = float(data.get("client_at", fact["at"]))
        ring = self._calls.get(key)
        if state in END_STATES:
            self._calls.pop(key, None)
            if ring is None or ring.answered or not ended_by_caller(state, data.get("reason")):
                return None  # answered (handled), or declined / timed out: offered only
            return CallChange(abandoned=1, abandon_time=max(0.0, at - ring.rang_at))
        if ring is None:
            # First report of a call: it reached the agent's phone, an offer. A call first
            # seen already answered (auto-answer, a report lost) is offered and handled at once.
            answered = state in ANSWER_STATES
            self._calls[key] = _Ring(at, answered=answered)
            return CallChange(offered=1, answered=int(answered))
        if state in ANSWER_STATES and not ring.answered:
            ring.answered = True
            return CallChange(answered=1)
        return None
