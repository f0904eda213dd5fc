"""Fixtures of the fault suite (tests/fault/support.py)."""

from tests.fault.support import engines

__all__ = ["engines"]
