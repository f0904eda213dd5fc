"""kill -9 and restart of the router under traffic: nothing lost, nothing assigned twice.

Three agents (real SyncEngines, each with its own cache) accept every offer and reply to their
conversations while customers keep writing in; the router process is killed with SIGKILL at
seeded random moments and started again on the same database and port. At the end every
reply an agent saw written is at the router exactly once, no conversation was ever accepted
by two agents, and each cache equals the router's view row by row.
5 restarts by default, 50 with SWITCHBOARD_LONG=1.
"""

from __future__ import annotations

import random
import threading
from functools import partial
from pathlib import Path
from typing import Any

from sync.client import SyncEngine
from tests.fault.support import (
    FaultCounts,
    Recorder,
    compare_with_router,
    inbound,
    integrity,
    rows,
    scale,
    wait_converged,
)
from tests.support.router_proc import RouterProcess
from tests.support.wait import wait_until

SEED = 7
AGENTS = {"ana": "a-ana", "ben": "a-ben", "chloe": "a-chloe"}
QUEUES = ("support", "sales", "billing")


class Agent(threading.Thread):
    """Replies to each of the agent's assigned conversations, one reply at a time."""

    def __init__(self, name: str, engine: SyncEngine, cache: Path, stop: threading.Event) -> None:
        super().__init__(name=f"agent-{name}", daemon=True)
        self.agent = name
        self.engine = engine
        self.cache = cache
        self.stop_flag = stop
        self.written: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        n = 0
        try:
            while not self.stop_flag.wait(0.03):  # an agent's pace, not an ordering wait
                mine = rows(
                    self.cache,
                    "SELECT id FROM conversations WHERE assigned_agent = ? "
                    "AND status = 'assigned' ORDER BY id",
                    AGENTS[self.agent],
                )
                for (conv,) in mine[:3]:
                    body = f"{self.agent}-{n}"
                    self.engine.send_message(conv, body).result(20)
                    self.written.append(body)
                    n += 1
        except BaseException as exc:  # the test asserts it stayed None
            self.error = exc


def is_online(rec: Recorder) -> bool:
    return rec.state() == "online"


def engine_online(engine: SyncEngine) -> bool:
    return engine.status.state == "online"


def customers(router: RouterProcess, stop: threading.Event, rng: random.Random) -> None:
    n = 0
    while not stop.wait(0.05):
        if (
            inbound(
                router,
                f"customer line {n}",
                visitor=f"v{rng.randrange(40)}",
                queue=rng.choice(QUEUES),
            )
            is not None
        ):
            n += 1


def test_router_killed_under_traffic(tmp_path: Path, engines: Any) -> None:
    restarts = scale(5, 50)
    rng = random.Random(SEED)
    counts = FaultCounts("router kill -9")
    proc = RouterProcess(tmp_path / "router.db", ["--demo-agents", "--offer-timeout", "5"])
    with proc:
        agents: list[Agent] = []
        stop = threading.Event()
        for name in AGENTS:
            engine, rec = engines(proc.url, f"{name}.db", username=name, auto_accept=True)
            wait_until(partial(is_online, rec), what=f"{name} online")
            engine.set_state("available").result(10)
            agents.append(Agent(name, engine, tmp_path / f"{name}.db", stop))
        traffic = threading.Thread(
            target=customers, args=(proc, stop, random.Random(SEED)), daemon=True
        )
        traffic.start()
        for agent in agents:
            agent.start()
        try:
            for _ in range(restarts):
                stop.wait(rng.uniform(0.4, 1.5))  # the moment of the next kill (seeded)
                proc.restart(kill=True)
                counts.faults += 1
            # Let every agent reach the router once more before the traffic stops.
            for agent in agents:
                wait_until(
                    partial(engine_online, agent.engine),
                    timeout=60,
                    what=f"{agent.agent} back online",
                )
        finally:
            stop.set()
            traffic.join(30)
            for agent in agents:
                agent.join(30)
        for agent in agents:
            assert agent.error is None, f"{agent.agent}: {agent.error!r}"
            # The agents set 'available' before the first kill; they stay so after restarts.
            wait_converged(proc, agent.cache, AGENTS[agent.agent], timeout=90)
        written = [b for a in agents for b in a.written]
        at_router = [
            r[0] for r in rows(proc.db, "SELECT body FROM messages WHERE direction = 'out'")
        ]
        counts.tally(written, at_router)
        twice = rows(
            proc.db,
            "SELECT conversation_id FROM offers WHERE status = 'accepted' "
            "GROUP BY conversation_id HAVING COUNT(DISTINCT agent_id) > 1",
        )
        holders: dict[str, set[str]] = {}
        problems: list[str] = []
        for agent in agents:
            assert integrity(agent.cache) == "ok"
            for (conv,) in rows(
                agent.cache,
                "SELECT id FROM conversations WHERE assigned_agent = ?",
                AGENTS[agent.agent],
            ):
                holders.setdefault(conv, set()).add(agent.agent)
            problems += compare_with_router(proc, agent.cache, AGENTS[agent.agent])
        counts.extra["assigned_twice"] = len(twice) + sum(1 for h in holders.values() if len(h) > 1)
        counts.extra["conversations"] = rows(proc.db, "SELECT COUNT(*) FROM conversations")[0][0]
        counts.extra["cache_differences"] = len(problems)
        counts.report()
        assert counts.written > 0
        assert counts.lost == 0 and counts.duplicated == 0
        assert counts.extra["assigned_twice"] == 0
        assert not problems, problems[:5]
