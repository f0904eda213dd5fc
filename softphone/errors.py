"""The engine's one exception type for commands that cannot be done."""

from __future__ import annotations


class EngineError(Exception):
    """A command could not be done; `code` is one of rpc.ERROR_CODES, the text is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
