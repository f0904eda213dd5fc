"""Which b-trees the router's WAL frames belong to: a snapshot of a running router's database.

    .venv/bin/python bench/bench_router_wal.py /tmp/bench-router-XXXX/router.db

Run it while `bench/bench_router.py` is running (its database lives in a `bench-router-*`
temporary directory). It copies the database and its WAL, reads each frame's page number
from the WAL (frame headers, as in https://sqlite.org/fileformat.html#the_write_ahead_log),
and names each page's b-tree with the `dbstat` virtual table of the copy. This is how the
write volume was attributed (docs/architecture.md, "Router performance"): frames per b-tree,
not bytes per row, is what the checkpoints have to copy back.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sqlite3
import struct
import tempfile
from pathlib import Path

_WAL_HEADER = 32
_FRAME_HEADER = 24


def frame_pages(wal: bytes) -> list[int]:
    """Page numbers of the WAL's frames, in order (salt-checked: stale frames left from a
    log that started over are not counted)."""
    if len(wal) < _WAL_HEADER:
        return []
    page_size = struct.unpack(">I", wal[8:12])[0]
    salts = wal[16:24]
    pages = []
    offset = _WAL_HEADER
    while offset + _FRAME_HEADER + page_size <= len(wal):
        header = wal[offset : offset + _FRAME_HEADER]
        if header[8:16] != salts:
            break
        pages.append(struct.unpack(">I", header[0:4])[0])
        offset += _FRAME_HEADER + page_size
    return pages


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("db", type=Path)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="walstat-"))
    wal = Path(f"{args.db}-wal").read_bytes()
    shutil.copy(args.db, tmp / "copy.db")
    (tmp / "copy.db-wal").write_bytes(wal)
    pages = frame_pages(wal)
    conn = sqlite3.connect(tmp / "copy.db")
    owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    conn.close()
    shutil.rmtree(tmp)
    counts = collections.Counter(owner.get(page, "?") for page in pages)
    total = max(1, len(pages))
    print(f"{len(pages)} frames in the WAL snapshot")
    for name, n in counts.most_common(15):
        print(f"{n:>7} {100 * n / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
