"""The agent's app, reduced to what a kill -9 can hurt: a SyncEngine writing replies.

Run as `python -m tests.fault.agent_child CACHE URL TOKEN CONVERSATION PREFIX START`. It
prints `READY` once the cache is open and the conversation is in it, then writes replies
`PREFIX-<n>` for n = START, START+1, ... as fast as the engine takes them, printing
`WRITTEN <n>` after each one is in the cache (the moment the agent sees it in the thread).
With START = -1 it writes nothing and prints `DRAINED` when the outbox is empty.
The parent kills it with SIGKILL at seeded random moments.
"""

from __future__ import annotations

import sys
import threading
import time

from sync.client import SyncEngine
from sync.store import open_readonly
from tests.support.wait import wait_until


def main() -> None:
    cache, url, token, conversation_id, prefix, start = sys.argv[1:7]
    engine = SyncEngine(cache, url, on_change=lambda _c: None, token=token, backoff_cap=0.5)
    engine.start()
    engine.cache_ready.result(30)
    reader = open_readonly(cache)

    def has(sql: str, *args: object) -> bool:
        return bool(reader.execute(sql, args).fetchone()[0])

    wait_until(
        lambda: has("SELECT COUNT(*) FROM conversations WHERE id = ?", conversation_id),
        timeout=30,
        what="the conversation in the cache",
    )
    print("READY", flush=True)
    n = int(start)
    if n < 0:
        wait_until(
            lambda: not has("SELECT COUNT(*) FROM outbox"), timeout=60, what="the outbox to drain"
        )
        print("DRAINED", flush=True)
        threading.Event().wait()
    while True:
        engine.send_message(conversation_id, f"{prefix}-{n}").result(30)
        print(f"WRITTEN {n}", flush=True)
        n += 1
        time.sleep(0.005)  # pacing only: an agent types, and the router's log stays small


if __name__ == "__main__":
    main()
