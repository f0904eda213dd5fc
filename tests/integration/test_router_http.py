"""The router's HTTP side and the websocket upgrade's authentication, on a real process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.router_proc import DEMO_PASSWORD, AgentConn, RouterProcess
from tests.support.wait import wait_until


def test_login_returns_a_token_and_the_agent(router: RouterProcess) -> None:
    response = httpx.post(
        f"{router.url}/api/login", json={"username": "ana", "password": DEMO_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["agent"] == {
        "id": "a-ana",
        "name": "Ana Lima",
        "queues": ["support", "sales"],
        "capacity": {"voice": 1, "chat": 3, "sms": 2, "email": 5},
        "skills": {"english": 4, "spanish": 4, "sales_products": 3},
        "supervises": [],
    }
    assert len(body["token"]) >= 32
    assert body["expires_at"] > httpx.get(f"{router.url}/health").json()["time"]


@pytest.mark.parametrize(
    "username, password", [("ana", "wrong"), ("nobody", DEMO_PASSWORD), ("ana", "")]
)
def test_login_refused_with_a_wrong_password_or_user(
    router: RouterProcess, username: str, password: str
) -> None:
    response = httpx.post(
        f"{router.url}/api/login", json={"username": username, "password": password}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "bad_credentials"


def test_login_with_a_malformed_body_is_a_bad_request(router: RouterProcess) -> None:
    response = httpx.post(f"{router.url}/api/login", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_health(router: RouterProcess) -> None:
    body = httpx.get(f"{router.url}/health").json()
    assert body["status"] == "ok"
    assert body["agents"] == {"offline": 4}  # ana, ben, chloe and the supervisor sam


def test_passwords_tokens_and_bodies_are_not_logged_even_at_debug(
    demo_router: RouterProcess,
) -> None:
    router = demo_router  # runs with --log-level DEBUG
    token = router.login("ana")
    body = "a body that must not reach the log"
    router.inbound("chat", "v-log", "Logged?", body, "support")
    assert asyncio.run(_connects(router, token))
    log = router.stderr_tail(lines=10_000)
    assert "DEBUG" in log and body not in log
    assert "logged in" in log
    assert DEMO_PASSWORD not in log and token not in log
    # ...nor stored in clear in the database.
    data = router.db.read_bytes() + Path(str(router.db) + "-wal").read_bytes()
    assert DEMO_PASSWORD.encode() not in data and token.encode() not in data


async def _upgrade_error(router: RouterProcess, headers: dict[str, str]) -> tuple[int, dict]:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(router.ws_url, additional_headers=headers):
            pass
    response = info.value.response
    return response.status_code, json.loads(bytes(response.body or b""))


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic YW5hOng="}]
)
def test_upgrade_without_a_valid_token_is_refused_with_401(
    router: RouterProcess, headers: dict[str, str]
) -> None:
    status, body = asyncio.run(_upgrade_error(router, headers))
    assert status == 401
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]


def test_expired_token_is_refused_with_token_expired(tmp_path: Path) -> None:
    with RouterProcess(tmp_path / "r.db", ["--demo-agents", "--token-ttl", "0.5"]) as proc:
        token = proc.login("ana")
        headers = {"Authorization": f"Bearer {token}"}

        def expired() -> bool:
            try:
                status, body = asyncio.run(_upgrade_error(proc, headers))
            except pytest.fail.Exception:  # still valid: the upgrade succeeded
                return False
            return status == 401 and body["error"]["code"] == "token_expired"

        wait_until(expired, timeout=10, interval=0.2, what="the token to expire")
        # A fresh login works again.
        assert asyncio.run(_connects(proc, proc.login("ana")))


async def _connects(router: RouterProcess, token: str) -> bool:
    conn = await AgentConn.open(router.ws_url, token)
    await conn.close()
    return conn.hello["agent"]["id"] == "a-ana"


def test_conversation_messages_for_an_agent_who_may_see_it(demo_router: RouterProcess) -> None:
    ana = {"Authorization": f"Bearer {demo_router.login('ana')}"}
    ben = {"Authorization": f"Bearer {demo_router.login('ben')}"}
    billing = demo_router.inbound("email", "z@example.com", "Zed", "Invoice?", "billing")
    mine = httpx.get(f"{demo_router.url}/api/conversations/{billing}/messages", headers=ben)
    assert mine.status_code == 200
    assert [m["body"] for m in mine.json()["messages"]] == ["Invoice?"]
    assert mine.json()["conversation"]["queue"] == "billing"
    other = httpx.get(f"{demo_router.url}/api/conversations/{billing}/messages", headers=ana)
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
    missing = httpx.get(f"{demo_router.url}/api/conversations/c-none/messages", headers=ana)
    assert missing.status_code == 404
    anonymous = httpx.get(f"{demo_router.url}/api/conversations/{billing}/messages")
    assert anonymous.status_code == 401


def test_demo_traffic_brings_new_conversations(tmp_path: Path) -> None:
    args = ["--demo", "--demo-rate", "600", "--demo-seed", "7"]  # about ten a second
    with RouterProcess(tmp_path / "r.db", args) as proc:
        seeded = httpx.get(f"{proc.url}/health").json()["queued"]
        assert seeded >= 5  # no agents: the demo's conversations for ana wait in the queue
        wait_until(
            lambda: httpx.get(f"{proc.url}/health").json()["queued"] >= seeded + 3,
            timeout=10,
            what="demo arrivals",
        )
        # and the demo pauses once enough wait, instead of piling up
        wait_until(lambda: httpx.get(f"{proc.url}/health").json()["queued"] >= 15, timeout=15)
        assert httpx.get(f"{proc.url}/health").json()["queued"] == 15


def _team(router: RouterProcess, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{router.url}/api/team", headers=headers)


def test_team_lists_only_colleagues_of_shared_queues_with_their_live_state(
    router: RouterProcess,
) -> None:
    ana, ben, sam = router.login("ana"), router.login("ben"), router.login("sam")
    body = _team(router, ana).json()
    # Ana (support, sales): Ben shares support, Chloé sales; Sam supervises but takes none.
    assert body == {
        "agents": [
            {
                "id": "a-ben",
                "name": "Ben Okafor",
                "state": "offline",
                "reason": None,
                "queues": ["support"],
            },
            {
                "id": "a-chloe",
                "name": "Chloé Martin",
                "state": "offline",
                "reason": None,
                "queues": ["sales"],
            },
        ]
    }
    # The supervisor sees the agents of the queues they supervise; nobody sees password rows.
    assert [a["id"] for a in _team(router, sam).json()["agents"]] == ["a-ana", "a-ben", "a-chloe"]
    assert "password" not in _team(router, sam).text

    async def ben_goes_away() -> None:
        conn = await AgentConn.open(router.ws_url, ben)
        await conn.resume(0)
        assert (await conn.command("set_state", state="away", reason="lunch"))["ok"]
        await conn.close()

    asyncio.run(ben_goes_away())
    wait_until(
        lambda: _team(router, ana).json()["agents"][0]["state"] == "away",
        what="Ben away in Ana's team list",
    )
    assert _team(router, ana).json()["agents"][0]["reason"] == "lunch"


@pytest.mark.parametrize("token", [None, "not-a-token"])
def test_team_refuses_without_a_valid_token(router: RouterProcess, token: str | None) -> None:
    response = _team(router, token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
