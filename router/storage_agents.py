"""Storage part: agents (state, idle time, load), login tokens and reported calls."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from router.storage_base import Row, SqlBase

CALL_OVER_STATES = (
    "ended",
    "failed",
    "missed",
    "rejected",
    "declined",
    "disconnected",
    "canceled",
)
"""`call_event` states (any case) after which a call no longer holds the agent's voice slot;
`disconnected` is what the phone engine (pjsua2) reports."""


@functools.lru_cache(maxsize=4096)
def _decoded(text: str) -> Any:
    return json.loads(text)


class AgentRows(SqlBase):
    """Agents, tokens and calls."""

    _team_cache: dict[tuple[str, str], list[str]] | None = None
    _rows: dict[str, Row] | None = None
    """Every agent row, decoded, kept in step by this class's own writes (the only writers of
    the agents table, apart from pruning's `last_seq`, which is left out of these rows: a
    stream's head comes from `last_seq()`). Routing reads its candidates' state, capacity,
    skills and idle times on every arrival, and every command reads its agent: from memory,
    without a query. `Storage` drops it whenever a transaction does not commit, so it is read
    again from what the disk holds."""

    # ------------------------------------------------------------------ agents

    @staticmethod
    def _agent(row: Row | None) -> Row | None:
        """Decode the JSON columns. The decoded values are shared between rows (routing reads
        thousands of agent rows a second and these columns rarely change): read them, never
        mutate them."""
        if row is None:
            return None
        for column, empty in (
            ("queues", "[]"),
            ("capacity", "{}"),
            ("skills", "{}"),
            ("supervises", "[]"),
        ):
            row[column] = _decoded(row.get(column) or empty)
        return row

    def _agent_rows(self) -> dict[str, Row]:
        rows = self._rows
        if rows is None:
            rows = {}
            for r in self._all("SELECT * FROM agents"):
                r.pop("last_seq", None)
                agent = self._agent(r)
                assert agent is not None
                rows[agent["id"]] = agent
            self._rows = rows
        return rows

    def _touch(self, agent_id: str, **fields: Any) -> None:
        """Apply a write to the cached row too (same transaction: dropped on rollback)."""
        if self._rows is not None:
            row = self._rows.get(agent_id)
            if row is not None:
                row.update(fields)

    def forget_agents(self) -> None:
        """Read the agents from the database again (after a rollback)."""
        self._rows = None

    def upsert_agent(
        self,
        agent_id: str,
        username: str,
        name: str,
        password_hash: str,
        queues: Sequence[str],
        capacity: Mapping[str, int],
        now: float,
        skills: Mapping[str, int] | None = None,
        supervises: Sequence[str] = (),
    ) -> None:
        """Create an agent, or update their name, password, queues, capacity, skills and
        supervised queues (an empty `password_hash` keeps the stored one)."""
        self._team_cache = None
        self._rows = None
        self.conn.execute(
            "INSERT INTO agents (id, username, name, password_hash, queues, capacity, "
            "state_since, idle_since, skills, supervises) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET username = excluded.username, name = excluded.name, "
            "password_hash = CASE WHEN excluded.password_hash = '' THEN agents.password_hash "
            "ELSE excluded.password_hash END, queues = excluded.queues, "
            "capacity = excluded.capacity, skills = excluded.skills, "
            "supervises = excluded.supervises",
            (
                agent_id,
                username,
                name,
                password_hash,
                json.dumps(list(queues)),
                json.dumps(dict(capacity)),
                now,
                now,
                json.dumps(dict(skills or {})),
                json.dumps(list(supervises)),
            ),
        )

    def agent(self, agent_id: str) -> Row | None:
        row = self._agent_rows().get(agent_id)
        return None if row is None else dict(row)

    def agent_by_username(self, username: str) -> Row | None:
        return self._agent(self._one("SELECT * FROM agents WHERE username = ?", (username,)))

    def agents(self) -> list[Row]:
        rows = self._agent_rows()
        return [dict(rows[a]) for a in sorted(rows)]

    def set_agent_state(self, agent_id: str, state: str, reason: str | None, now: float) -> None:
        self.conn.execute(
            "UPDATE agents SET state = ?, state_reason = ?, state_since = ? WHERE id = ?",
            (state, reason, now, agent_id),
        )
        self._touch(agent_id, state=state, state_reason=reason, state_since=now)

    def set_idle_since(self, agent_id: str, when: float) -> None:
        self.conn.execute("UPDATE agents SET idle_since = ? WHERE id = ?", (when, agent_id))
        self._touch(agent_id, idle_since=when)

    def set_last_offered(self, agent_id: str, when: float) -> None:
        self.conn.execute("UPDATE agents SET last_offered_at = ? WHERE id = ?", (when, agent_id))
        self._touch(agent_id, last_offered_at=when)

    def set_wrap_until(self, agent_id: str, when: float | None) -> None:
        self.conn.execute("UPDATE agents SET wrap_until = ? WHERE id = ?", (when, agent_id))
        self._touch(agent_id, wrap_until=when)

    def wrap_deadlines(self) -> list[Row]:
        """(id, wrap_until) of agents in after-contact work with a timer."""
        return sorted(
            (
                {"id": a["id"], "wrap_until": a["wrap_until"]}
                for a in self._agent_rows().values()
                if a["state"] == "wrap_up" and a["wrap_until"] is not None
            ),
            key=lambda r: (r["wrap_until"], r["id"]),
        )

    def _teams(self) -> dict[tuple[str, str], list[str]]:
        """(`queues` | `supervises`, queue) -> agent ids, cached: every event's audience needs
        it, and teams change only through `upsert_agent` (the config at start)."""
        cache = self._team_cache
        if cache is None:
            cache = {}
            for row in self._all("SELECT id, queues, supervises FROM agents ORDER BY id"):
                for column in ("queues", "supervises"):
                    for queue in json.loads(row[column] or "[]"):
                        cache.setdefault((column, queue), []).append(row["id"])
            self._team_cache = cache
        return cache

    def agent_teams(self) -> dict[str, Row]:
        """id -> row of every agent, for its `queues` and `supervises`: the cached rows
        themselves (the live metrics need each connected agent's queues every push; copying
        2,000 rows for that was a tenth of the router's time). Read it, never mutate it."""
        return self._agent_rows()

    def supervisors_of(self, queue: str) -> list[str]:
        return list(self._teams().get(("supervises", queue), ()))

    def members_of(self, queue: str) -> list[str]:
        return list(self._teams().get(("queues", queue), ()))

    def routable_agents(self, queues: Sequence[str]) -> list[Row]:
        """Agents who may take work now (`available`, or `busy` on a call) and are members of
        one of `queues`: routing reads only these, not the whole roster. The rows are the
        cached ones: read them, never mutate them."""
        rows = self._agent_rows()
        ids = sorted({a for q in queues for a in self.members_of(q)})
        return [
            row
            for row in (rows.get(a) for a in ids)
            if row is not None and row["state"] in ("available", "busy")
        ]

    def agent_states(self) -> list[Row]:
        """(id, state, queues) of every agent: the live figures' agents-by-state."""
        return [
            {"id": a["id"], "state": a["state"], "queues": a["queues"]}
            for a in self._agent_rows().values()
        ]

    def agent_load(self, agent_id: str) -> dict[str, int]:
        """Work the agent holds per channel: assigned/wrap-up conversations, pending offers
        and calls in progress."""
        load: dict[str, int] = {}
        for row in self.conn.execute(
            "SELECT channel, COUNT(*) FROM conversations WHERE assigned_agent = ? "
            "AND status IN ('assigned', 'wrap_up') GROUP BY channel",
            (agent_id,),
        ):
            load[row[0]] = load.get(row[0], 0) + row[1]
        for row in self.conn.execute(
            "SELECT c.channel, COUNT(*) FROM offers o JOIN conversations c "
            "ON c.id = o.conversation_id WHERE o.agent_id = ? AND o.status = 'pending' "
            "GROUP BY c.channel",
            (agent_id,),
        ):
            load[row[0]] = load.get(row[0], 0) + row[1]
        marks = ", ".join("?" for _ in CALL_OVER_STATES)
        calls = self._one(
            f"SELECT COUNT(*) AS n FROM calls WHERE agent_id = ? AND lower(state) NOT IN ({marks})",
            (agent_id, *CALL_OVER_STATES),
        )
        if calls and calls["n"]:
            load["voice"] = load.get("voice", 0) + int(calls["n"])
        return load

    def agents_in_states(self, states: Sequence[str]) -> list[Row]:
        rows = self._agent_rows()
        return [dict(rows[a]) for a in sorted(rows) if rows[a]["state"] in states]

    def all_loads(self, agent_ids: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
        """`agent_load` for every agent holding work (or only for `agent_ids`), in three
        queries (routing runs on every arrival, so it must not cost a query per agent; given
        the few candidates of the waiting queues, it reads only their rows)."""
        loads: dict[str, dict[str, int]] = {}

        def add(agent_id: str, channel: str, n: int) -> None:
            per = loads.setdefault(agent_id, {})
            per[channel] = per.get(channel, 0) + n

        ids: tuple[str, ...] = ()
        only = {"c": "", "o": "", "k": ""}
        if agent_ids is not None:
            if not agent_ids:
                return loads
            if len(agent_ids) <= 500:  # under SQLite's bound-parameter limit
                ids = tuple(agent_ids)
                marks = ", ".join("?" for _ in ids)
                only = {
                    "c": f" AND assigned_agent IN ({marks})",
                    "o": f" AND o.agent_id IN ({marks})",
                    "k": f" AND agent_id IN ({marks})",
                }
        for row in self.conn.execute(
            "SELECT assigned_agent, channel, COUNT(*) FROM conversations WHERE status IN "
            f"('assigned', 'wrap_up') AND assigned_agent IS NOT NULL{only['c']} "
            "GROUP BY assigned_agent, channel",
            ids,
        ):
            add(row[0], row[1], row[2])
        for row in self.conn.execute(
            "SELECT o.agent_id, c.channel, COUNT(*) FROM offers o JOIN conversations c "
            f"ON c.id = o.conversation_id WHERE o.status = 'pending'{only['o']} "
            "GROUP BY o.agent_id, c.channel",
            ids,
        ):
            add(row[0], row[1], row[2])
        marks = ", ".join("?" for _ in CALL_OVER_STATES)
        for row in self.conn.execute(
            f"SELECT agent_id, COUNT(*) FROM calls WHERE lower(state) NOT IN ({marks})"
            f"{only['k']} GROUP BY agent_id",
            (*CALL_OVER_STATES, *ids),
        ):
            add(row[0], "voice", row[1])
        return loads

    # ------------------------------------------------------------------ tokens

    def add_token(self, token_hash: str, agent_id: str, now: float, expires_at: float) -> None:
        self.conn.execute(
            "INSERT INTO tokens (token_hash, agent_id, created_at, expires_at) VALUES (?,?,?,?)",
            (token_hash, agent_id, now, expires_at),
        )

    def token(self, token_hash: str) -> Row | None:
        return self._one("SELECT * FROM tokens WHERE token_hash = ?", (token_hash,))

    def prune_tokens(self, expired_before: float) -> int:
        return self.conn.execute(
            "DELETE FROM tokens WHERE expires_at < ?", (expired_before,)
        ).rowcount

    # ------------------------------------------------------------------ calls

    def upsert_call(
        self, agent_id: str, call_id: str, direction: str, remote: str, state: str, at: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO calls (call_id, agent_id, direction, remote, state, at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(agent_id, call_id) DO UPDATE SET "
            "state = excluded.state, at = excluded.at",
            (call_id, agent_id, direction, remote, state, at),
        )
