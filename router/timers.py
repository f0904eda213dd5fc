"""The ACD's timed changes: wrap-up timeouts, queue overflow and scheduled callbacks.

`run_due` applies what is due at `now` (inside `Acd.tick`'s transaction) and `deadlines` says
when the next one falls, so the service's ticker sleeps exactly until then.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from router import routing, tasks

if TYPE_CHECKING:
    from router.acd import Acd

log = logging.getLogger(__name__)


def run_due(acd: Acd, now: float) -> None:
    storage = acd.storage
    for row in storage.wrap_deadlines():
        if row["wrap_until"] > now:
            break
        agent_id = row["id"]
        for task in storage.held_conversations(agent_id, ("wrap_up",)):
            tasks.complete(acd, agent_id, task, None, timed_out=True)
        log.info("agent %s: wrap-up time is over", agent_id)
        acd.set_agent_state(agent_id, "available")
    for task_id, target in routing.overflowing(
        storage.overflow_candidates(), acd.config.queue_specs, now
    ):
        task = acd.conversation(task_id)
        acd.fact("task_overflowed", task, to_queue=target)
        moved = acd.change_conversation(task_id, queue=target, queue_entered_at=now)
        acd.fact("task_queued", moved, reason="overflow")
        log.info("%s overflowed from %s to %s", task_id, task["queue"], target)
    for callback in storage.due_callbacks(now):
        tasks.fire_callback(acd, callback)


def deadlines(acd: Acd) -> list[float]:
    storage = acd.storage
    out = [float(r["wrap_until"]) for r in storage.wrap_deadlines()]
    out += routing.overflow_deadlines(storage.overflow_candidates(), acd.config.queue_specs)
    due = storage.next_callback_due()
    if due is not None:
        out.append(due)
    return out
