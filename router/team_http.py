"""`GET /api/team`: who an agent can hand a conversation to, and what they are doing now.

Why an HTTP read and not an event stream: the agent needs the list only when opening the
Transfer dialog, and it is true only at that moment; pushing every colleague's state change
to every agent would multiply the router's event traffic for a dialog opened a few times a
shift. An agent sees the agents of the queues they belong to or supervise, never the whole
roster (docs/protocol.md).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from router.http_common import agent_for
from router.service import Service


async def team(request: Request) -> JSONResponse:
    """`GET /api/team` -> `{"agents": [{id, name, state, reason, queues}]}`, by name."""
    service: Service = request.app.state.service
    me = agent_for(service, request)
    if isinstance(me, JSONResponse):
        return me
    mine = set(me["queues"]) | set(me.get("supervises") or ())
    agents = []
    for row in service.storage.agents():
        shared = sorted(mine & set(row["queues"]))
        if row["id"] == me["id"] or not shared:
            continue
        agents.append(
            {
                "id": row["id"],
                "name": row.get("name") or row["id"],
                "state": row["state"],
                "reason": row.get("state_reason"),
                "queues": shared,
            }
        )
    agents.sort(key=lambda a: (str(a["name"]).casefold(), a["id"]))
    return JSONResponse({"agents": agents})
