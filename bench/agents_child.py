"""Simulated agents for bench_latency.py (not a benchmark itself).

    python bench/agents_child.py WS_URL TOKENS_FILE

Opens one websocket per token (one line each), resumes from 0 (snapshot), sets the agent
available and then reads and discards every frame, as a live desktop would. Prints
`CONNECTED <n>` once all are live, and runs until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import websockets


async def agent(url: str, token: str, live: asyncio.Queue[int]) -> None:
    async with websockets.connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=None,
        open_timeout=120,
        ping_interval=None,
    ) as ws:
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "resume", "since": 0}))
        while json.loads(await ws.recv())["type"] != "live":
            pass
        await ws.send(
            json.dumps(
                {
                    "type": "command",
                    "id": str(uuid.uuid4()),
                    "name": "set_state",
                    "args": {"state": "available", "reason": None},
                }
            )
        )
        live.put_nowait(1)
        async for _frame in ws:
            pass


async def main(url: str, tokens: list[str]) -> None:
    live: asyncio.Queue[int] = asyncio.Queue()
    tasks = []
    for i, token in enumerate(tokens):
        tasks.append(asyncio.create_task(agent(url, token, live)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # pacing the connection storm, as agents log in over time
    for _ in tokens:
        await live.get()
    print(f"CONNECTED {len(tokens)}", flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        asyncio.run(main(sys.argv[1], f.read().split()))
