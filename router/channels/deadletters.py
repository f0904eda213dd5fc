"""`python -m router.channels.deadletters --db PATH`: list dead letters from the database.

For an admin on the router's host, with or without the router running (SQLite in WAL mode
reads alongside the writer). Prints one JSON object per line, newest first; `--raw ID` writes
one letter's kept input to stdout as bytes.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m router.channels.deadletters", description=__doc__.splitlines()[0]
    )
    p.add_argument("--db", required=True, help="the router's SQLite database")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--raw", type=int, default=None, help="write this letter's input to stdout")
    args = p.parse_args(argv)
    try:
        conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        if args.raw is not None:
            row = conn.execute("SELECT raw FROM dead_letters WHERE id = ?", (args.raw,)).fetchone()
            if row is None:
                print(f"no dead letter {args.raw}", file=sys.stderr)
                return 1
            sys.stdout.buffer.write(bytes(row["raw"] or b""))
            return 0
        rows = conn.execute(
            "SELECT id, channel, received_at, reason, detail, source, size FROM dead_letters "
            "ORDER BY id DESC LIMIT ?",
            (args.limit,),
        ).fetchall()
    except sqlite3.Error as exc:
        print(f"cannot read dead letters from {args.db}: {exc}", file=sys.stderr)
        return 1
    for row in rows:
        print(json.dumps(dict(row)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
