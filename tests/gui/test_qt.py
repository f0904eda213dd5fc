"""client.qt: the one door to Qt, and its start-up shortcut for PySide6's feature scan."""

from __future__ import annotations

import inspect
import json
import sys
from types import ModuleType

import client.inbox_model
import client.qt
import sync.store


def _pysides_answer(module: ModuleType) -> bool:
    """What `shibokensupport.feature._mod_uses_pyside` answers: the source mentions PySide6."""
    try:
        return "PySide6" in inspect.getsource(module)
    except (TypeError, OSError):
        return False


def test_the_fast_feature_scan_is_installed_and_answers_as_pyside_does() -> None:
    scan = sys.modules["shibokensupport.feature"]._mod_uses_pyside
    assert getattr(scan, "switchboard", False)
    for module in (client.qt, client.inbox_model, sync.store, json, sys):
        assert scan(module) == _pysides_answer(module), module.__name__
    assert scan(client.qt) and not scan(sync.store)  # both answers are exercised
