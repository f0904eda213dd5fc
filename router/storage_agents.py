"""Storage part: agents (state, idle time, load), login tokens and reported calls."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from router.storage_base import Row, SqlBase

CALL_OVER_STATES = ("ended", "failed", "missed", "rejected", "disconnected", "canceled")
"""`call_event` states (any case) after which a call no longer holds the agent's voice slot;
`disconnected` is what the phone engine (pjsua2) reports."""


class AgentRows(SqlBase):
    """Agents, tokens and calls."""

    # ------------------------------------------------------------------ agents

    @staticmethod
    def _agent(row: Row | None) -> Row | None:
        if row is None:
            return None
        row["queues"] = json.loads(row["queues"])
        row["capacity"] = json.loads(row["capacity"])
        return row

    def upsert_agent(
        self, agent_id: str, username: str, name: str, password_hash: str,
        queues: Sequence[str], capacity: Mapping[str, int], now: float,
    ) -> None:
        """Create an agent, or update their name, password, queues and capacity."""
        self.conn.execute(
            "INSERT INTO agents (id, username, name, password_hash, queues, capacity, "
            "state_since, idle_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET username = excluded.username, name = excluded.name, "
            "password_hash = excluded.password_hash, queues = excluded.queues, "
            "capacity = excluded.capacity",
            (agent_id, username, name, password_hash, json.dumps(list(queues)),
             json.dumps(dict(capacity)), now, now),
        )

    def agent(self, agent_id: str) -> Row | None:
        return self._agent(self._one("SELECT * FROM agents WHERE id = ?", (agent_id,)))

    def agent_by_username(self, username: str) -> Row | None:
        return self._agent(self._one("SELECT * FROM agents WHERE username = ?", (username,)))

    def agents(self) -> list[Row]:
        return [a for a in (self._agent(r) for r in self._all("SELECT * FROM agents ORDER BY id"))
                if a is not None]

    def set_agent_state(self, agent_id: str, state: str, reason: str | None, now: float) -> None:
        self.conn.execute(
            "UPDATE agents SET state = ?, state_reason = ?, state_since = ? WHERE id = ?",
            (state, reason, now, agent_id),
        )

    def set_idle_since(self, agent_id: str, when: float) -> None:
        self.conn.execute("UPDATE agents SET idle_since = ? WHERE id = ?", (when, agent_id))

    def agent_load(self, agent_id: str) -> dict[str, int]:
        """Work the agent holds per channel: assigned/wrap-up conversations, pending offers
        and calls in progress."""
        load: dict[str, int] = {}
        for row in self.conn.execute(
            "SELECT channel, COUNT(*) FROM conversations WHERE assigned_agent = ? "
            "AND status IN ('assigned', 'wrap_up') GROUP BY channel", (agent_id,)
        ):
            load[row[0]] = load.get(row[0], 0) + row[1]
        for row in self.conn.execute(
            "SELECT c.channel, COUNT(*) FROM offers o JOIN conversations c "
            "ON c.id = o.conversation_id WHERE o.agent_id = ? AND o.status = 'pending' "
            "GROUP BY c.channel", (agent_id,)
        ):
            load[row[0]] = load.get(row[0], 0) + row[1]
        marks = ", ".join("?" for _ in CALL_OVER_STATES)
        calls = self._one(
            f"SELECT COUNT(*) AS n FROM calls WHERE agent_id = ? AND lower(state) NOT IN "
            f"({marks})", (agent_id, *CALL_OVER_STATES)
        )
        if calls and calls["n"]:
            load["voice"] = load.get("voice", 0) + int(calls["n"])
        return load

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
