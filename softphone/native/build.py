"""Build the native clock path (`_sbaudio.so`) next to its sources, when it is missing or
older than them. `./dev` runs this before the app and the tests; the engine falls back to
the Python port, and says so, when the library is not there (no compiler, another OS).

    python -m softphone.native.build [--force]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = sorted(HERE.glob("*.c"))
HEADERS = sorted(HERE.glob("*.h"))
TARGET = HERE / "_sbaudio.so"
FLAGS = ["-O2", "-fPIC", "-shared", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread"]


def stale() -> bool:
    """Whether the library is missing or older than a source or header."""
    if not TARGET.exists():
        return True
    built = TARGET.stat().st_mtime
    return any(p.stat().st_mtime > built for p in SOURCES + HEADERS)


def build(force: bool = False) -> str | None:
    """Compile when needed. Returns None on success, else why it was not built."""
    if not (force or stale()):
        return None
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return "no C compiler (apt-get install gcc)"
    tmp = TARGET.with_suffix(".so.tmp")
    cmd = [cc, *FLAGS, "-o", str(tmp), *map(str, SOURCES), "-ldl", "-lm"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        return f"the compiler failed:\n{done.stderr.strip()}"
    tmp.replace(TARGET)  # atomic: a running engine keeps the old file mapped
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    why = build(parser.parse_args().force)
    if why is not None:
        print(f"switchboard: native audio path not built: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
