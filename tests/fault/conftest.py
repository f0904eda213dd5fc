"""Fixtures of the fault suite (tests/fault/support.py), and its counts in the summary."""

from __future__ import annotations

from typing import Any

from tests.fault.support import REPORTED, engines

__all__ = ["engines"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fault counts of this run, whatever `-s`/`-q` say."""
    if REPORTED:
        terminalreporter.section("fault counts")
        for line in REPORTED:
            terminalreporter.write_line(line)
