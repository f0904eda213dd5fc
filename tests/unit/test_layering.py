"""The import rules of DESIGN.md, checked on the source and by importing with Qt blocked.

client -> sync, softphone.rpc; router -> sync.protocol; sync and softphone import nothing of
ours outside themselves. No Qt in sync/ or router/; in softphone/ only the audio backend
module may import QtCore/QtMultimedia, never QtWidgets/QtGui.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("client", "softphone", "sync", "router")

# package -> the modules of ours (outside itself) it may import; a prefix match allows submodules.
ALLOWED: dict[str, tuple[str, ...]] = {
    # softphone.__main__ and router.__main__: only client/__main__.py, so the frozen bundle
    # (one executable) can run the phone engine and the embedded router as its children.
    "client": ("sync", "softphone.rpc", "router.__main__", "softphone.__main__"),
    "router": ("sync.protocol",),
    "sync": (),
    "softphone": (),
}
# The softphone modules allowed to touch Qt (audio backends only; backend_pulse through
# backend_qt, for QMediaDevices), and what they may import.
SOFTPHONE_QT_MODULES = ("backend_qt", "backend_pulse")
SOFTPHONE_QT_ALLOWED = ("PySide6.QtCore", "PySide6.QtMultimedia")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", OURS)
def test_imports_of_ours_follow_the_allowed_directions(package: str) -> None:
    bad = []
    for path in _sources(package):
        for name in _imports(path):
            top = name.split(".")[0]
            if top not in OURS or top == package:
                continue
            if not any(name == a or name.startswith(a + ".") for a in ALLOWED[package]):
                # `from sync import protocol` yields "sync" and "sync.protocol": judge the latter.
                if any(n.startswith(name + ".") for n in _imports(path)):
                    continue
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", ["sync", "router", "softphone"])
def test_core_packages_do_not_import_qt_outside_the_audio_backend(package: str) -> None:
    bad = []
    for path in _sources(package):
        for name in _imports(path):
            if not name.startswith(("PySide6", "shiboken6")):
                continue
            qt_backend = package == "softphone" and path.stem in SOFTPHONE_QT_MODULES
            if qt_backend and (name == "PySide6" or name.startswith(SOFTPHONE_QT_ALLOWED)):
                continue
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


def test_core_packages_import_with_pyside6_blocked() -> None:
    """Import every core module in a fresh interpreter where importing PySide6 fails."""
    modules = []
    for package in ("sync", "router", "softphone"):
        for path in _sources(package):
            if path.stem in SOFTPHONE_QT_MODULES or path.stem == "__main__":
                continue
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            modules.append(".".join(parts))
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'shiboken6'):\n"
        "            raise ImportError('Qt is blocked in the core: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print('imported', len(sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(modules) >= 3


def test_only_the_entry_point_runs_the_other_programs() -> None:
    """`router.__main__` / `softphone.__main__` are entry points for the frozen bundle only."""
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources("client")
        if path.name != "__main__.py" or path.parent.name != "client"
        for name in _imports(path)
        if name.startswith(("router.__main__", "softphone.__main__"))
    ]
    assert not bad, "\n".join(bad)
