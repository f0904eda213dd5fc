"""The router process with a config file: agents, queues and skills from TOML; a bad file is
one clear log line naming the key and exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from asyncio import run
from pathlib import Path

import httpx

from router.auth import hash_password
from tests.support.router_proc import ROOT, AgentConn, RouterProcess
from tests.support.wait import deadline

PASSWORD = "config-test-password"


def write_config(path: Path) -> Path:
    path.write_text(f"""
skills = ["german"]
[routing]
offer_timeout = 30
[queues.de]
skills = {{ german = 2 }}
[queues.general]
[agents.ute]
name = "Ute"
queues = ["de", "general"]
skills = {{ german = 4 }}
password_hash = "{hash_password(PASSWORD)}"
[agents.max]
queues = ["general"]
password_hash = "{hash_password(PASSWORD)}"
""")
    return path


def test_agents_and_queues_come_from_the_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "router.toml")
    with RouterProcess(
        tmp_path / "r.db",
        ["--config", str(config), "--demo-agents"],
        env={"SWITCHBOARD_DEMO_PASSWORD": PASSWORD},
    ) as proc:
        assert (
            httpx.post(
                f"{proc.url}/api/login", json={"username": "ana", "password": PASSWORD}
            ).status_code
            == 401
        )

        async def scenario() -> None:
            ute = await AgentConn.open(proc.ws_url, proc.login("ute", PASSWORD))
            max_ = await AgentConn.open(proc.ws_url, proc.login("max", PASSWORD))
            assert ute.hello["agent"]["skills"] == {"german": 4}
            for conn in (max_, ute):
                await conn.resume(0)
                assert (await conn.command("set_state", state="available"))["ok"]
            conversation = proc.inbound("chat", "v-1", "Jana", "Hallo", "de")
            offer = await ute.event("offer")
            assert offer["event"]["offer"]["conversation_id"] == conversation
            # max is not in the de queue: he never hears of its conversations.
            assert not [f for f in max_.events() if conversation in str(f)]
            refused = httpx.get(
                f"{proc.url}/api/conversations/{conversation}/messages",
                headers={"Authorization": f"Bearer {proc.login('max', PASSWORD)}"},
            )
            assert refused.status_code == 403
            unknown = httpx.post(
                f"{proc.url}/api/demo/inbound",
                json={"channel": "chat", "from": "v", "name": "n", "body": "b", "queue": "support"},
            )
            assert unknown.status_code == 400
            for conn in (ute, max_):
                await conn.close()

        run(scenario())


def test_a_bad_config_is_one_log_line_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "router.toml"
    bad.write_text(
        'skills = ["german"]\n[queues.de]\nskills = { klingon = 2 }\n'
        '[agents.ute]\nqueues = ["de"]\n'
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "router",
            "--port",
            "0",
            "--db",
            str(tmp_path / "r.db"),
            "--config",
            str(bad),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=deadline(30),
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert "queues.de.skills.klingon: unknown skill 'klingon'" in errors[0]
