"""Seed a cache the size the issue asks the inbox to stay instant at.

    python bench/seed_cache.py PATH [--conversations 100000] [--messages 1000000] [--seed 1]

Writes through `sync.store.open_store` (the app's own schema, indexes and FTS triggers), in
batches of one transaction each, with the conversation-list fields (`last_message_at`,
preview, `last_inbound_at`, unread) filled as `sync.apply` would leave them. Bodies are drawn
from a Zipf-like vocabulary so full-text search meets both rare and very common words.
Deterministic for a seed. About a minute per million messages on a laptop-class core.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sync.apply import preview
from sync.store import atomic, open_store, set_state

log = logging.getLogger("bench.seed_cache")


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "Ana Ben Chloe David Elena Farid Grace Hugo Ines James Kenji Lena Marta Nadia Omar "
    "Paula Quentin Rosa Sami Tara Uma Victor Wen Ximena Yusuf Zoe Aiko Bruno Carla Dmitri "
    "Emma Felix Greta Hana Ivan Julia Karl Lucia Mateo Nora"
)
LAST = _words(
    "Lima Costa Okafor Schmidt Rossi Novak Tanaka Moreau Silva Haddad Kowalski Jensen "
    "Garcia Murphy Dubois Nakamura Ivanova Bauer Santos Petrov Olsen Fischer Romero "
    "Yilmaz Ahmed Walsh Keller Brennan Ortiz Laine"
)
WORDS = _words(
    "order parcel refund invoice delivery account password payment card address broken "
    "late missing damaged subscription cancel upgrade plan price discount shipping "
    "tracking number return label warranty repair replacement charger screen battery "
    "login error code app update email phone chat help please thanks hello hi again "
    "still waiting week yesterday today tomorrow morning afternoon urgent manager "
    "agent support team ticket case status confirm check sorry understand issue "
    "problem solved working fine great bad wrong right small large blue black white "
    "size colour model serial receipt bank transfer paypal voucher gift coupon store "
    "branch courier driver door neighbour box package weight customs fee tax vat "
    "contract renewal notice letter postcode city street apartment floor key code "
    "router modem internet wifi signal outage slow fast speed install technician visit "
    "appointment schedule reschedule confirm booking reference flight hotel seat "
    "baggage lounge points loyalty member tier gold silver"
)


def body(rng: random.Random) -> str:
    n = rng.randint(6, 40)
    # Zipf-like: low indexes far more often, so 'order' is everywhere and 'silver' rare.
    words = [
        WORDS[min(int(rng.paretovariate(1.1)) - 1, len(WORDS) - 1)]
        if rng.random() < 0.7
        else rng.choice(WORDS)
        for _ in range(n)
    ]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice((".", "?", "!", "."))


def seed(
    path: Path,
    conversations: int,
    messages: int,
    seed_value: int = 1,
    agent_id: str = "a-ana",
    now: float | None = None,
    batch: int = 2000,
) -> None:
    """Create the cache at `path` (it must not exist)."""
    if path.exists():
        raise SystemExit(f"{path} exists; seed a new file")
    rng = random.Random(seed_value)
    now = time.time() if now is None else now
    db = open_store(path)
    conn = db.conn
    channels = ("email", "chat", "sms", "chat", "email", "voice")
    statuses = ("closed",) * 6 + ("assigned", "wrap_up", "queued", "offered")
    per = max(1, messages // conversations)
    extra = messages - per * conversations
    start = time.perf_counter()
    written = 0
    with atomic(db):
        set_state(db, "agent_id", agent_id)
        set_state(db, "agent", f'{{"id": "{agent_id}", "name": "Ana Lima"}}')
        set_state(db, "cursor", "1")
        set_state(db, "open_clean", "1")
        conn.execute(
            "INSERT OR REPLACE INTO agent_state VALUES (?, 'available', NULL, ?)", [agent_id, now]
        )
    for lo in range(0, conversations, batch):
        with atomic(db):
            crow, cvrow, mrows = [], [], []
            for i in range(lo, min(conversations, lo + batch)):
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                cid, cust = f"c-{i:06d}", f"cu-{i:06d}"
                crow.append((cust, name, now - 86400 * 400))
                channel = rng.choice(channels)
                status = rng.choice(statuses)
                assigned = (
                    agent_id
                    if status in ("assigned", "wrap_up") and rng.random() < 0.5
                    else (f"a-{rng.randrange(200)}" if status != "queued" else None)
                )
                count = per + (1 if i < extra else 0)
                t = now - rng.uniform(0, 86400 * 365)
                last_in = last_at = None
                last_body = ""
                for seq in range(1, count + 1):
                    t += rng.uniform(30, 3600)
                    direction = "in" if seq == 1 or rng.random() < 0.5 else "out"
                    text = body(rng)
                    mrows.append(
                        (
                            str(uuid.UUID(int=rng.getrandbits(128))),
                            cid,
                            seq,
                            direction,
                            cust if direction == "in" else (assigned or agent_id),
                            text,
                            t,
                            "sent",
                        )
                    )
                    last_at, last_body = t, text
                    if direction == "in":
                        last_in = t
                cvrow.append(
                    (
                        cid,
                        channel,
                        cust,
                        rng.choice(("support", "sales", "billing")),
                        status,
                        assigned,
                        f"About my {rng.choice(WORDS)}",
                        t - 86400,
                        t,
                        last_in,
                        last_at,
                        preview(last_body),
                        1 if status != "closed" and rng.random() < 0.2 else 0,
                    )
                )
            conn.executemany("INSERT INTO customers (id, name, created_at) VALUES (?, ?, ?)", crow)
            conn.executemany(
                "INSERT INTO conversations (id, channel, customer_id, queue, status, "
                "assigned_agent, subject, created_at, updated_at, last_inbound_at, "
                "last_message_at, last_message_preview, unread) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                cvrow,
            )
            conn.executemany(
                "INSERT INTO messages (id, conversation_id, seq, direction, author, body, "
                "created_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                mrows,
            )
            written += len(mrows)
        if (lo // batch) % 10 == 0:
            rate = written / max(1e-9, time.perf_counter() - start)
            print(
                f"  {lo + batch:>7,} conversations, {written:>9,} messages "
                f"({rate:,.0f} messages/s)",
                flush=True,
            )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()
    print(
        f"seeded {path}: {conversations:,} conversations, {written:,} messages in "
        f"{time.perf_counter() - start:.1f}s, {path.stat().st_size / 1e6:,.0f} MB"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", type=Path)
    p.add_argument("--conversations", type=int, default=100_000)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    seed(a.path, a.conversations, a.messages, a.seed)


if __name__ == "__main__":
    main()
