"""Switchboard's router: the ACD agents' apps talk to (embedded on loopback or standalone).

Run it with `python -m router` (`switchboard-router`); see docs/operations.md and
docs/routing.md.
"""

from __future__ import annotations

__version__ = "0.1.0"
