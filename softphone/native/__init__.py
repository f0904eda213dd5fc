"""The engine's native clock path (C, built by `python -m softphone.native.build`).

`library()` loads `_sbaudio.so` once; None when it is not there or does not load, with
`unavailable()` saying why in words for the log. Nothing here imports pjsua2 or Qt.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

_PATH = Path(__file__).resolve().parent / "_sbaudio.so"
_lib: ctypes.CDLL | None = None
_why: str | None = None
_failed = False  # a file that does not load is not tried again; a missing one is


def library() -> ctypes.CDLL | None:
    """The loaded library, or None (see `unavailable`)."""
    global _lib, _why, _failed
    if _lib is None and not _failed:
        if not _PATH.exists():
            _why = f"{_PATH.name} is not built (python -m softphone.native.build)"
        else:
            try:
                _lib = ctypes.CDLL(str(_PATH))
                _why = None
            except OSError as exc:
                _why = f"{_PATH.name} does not load: {exc}"
                _failed = True
    return _lib


def unavailable() -> str | None:
    """Why `library()` is None, or None when it loaded."""
    library()
    return _why
