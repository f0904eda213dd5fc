"""Finding and loading the app's own resources (SVG icons, the style sheet).

Why a module: the same code must find `resources/` in a source checkout and inside the
PyInstaller bundle (where it sits next to the executable under `sys._MEIPASS`), and icons are
cached so a list delegate painting hundreds of rows never re-parses SVG.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

from client.qt import QIcon

log = logging.getLogger(__name__)

CHANNELS = ("email", "chat", "sms", "voice")
CHANNEL_NAMES = {"email": "Email", "chat": "Chat", "sms": "SMS", "voice": "Voice"}


def resources_dir() -> Path:
    """The `resources/` folder, in a checkout or in the frozen bundle."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


@functools.cache
def icon(name: str) -> QIcon:
    """An icon from resources/icons/<name>.svg; a missing file is logged, not hidden."""
    path = resources_dir() / "icons" / f"{name}.svg"
    if not path.exists():
        log.error("icon missing: %s", path)
        return QIcon()
    return QIcon(str(path))


def channel_icon(channel: str | None) -> QIcon:
    return icon(f"channel-{channel}") if channel in CHANNELS else QIcon()


def state_icon(state: str | None) -> QIcon:
    known = ("available", "away", "offline", "busy", "wrap_up")
    return icon(f"state-{state if state in known else 'offline'}")


def style_sheet() -> str:
    """The app's Qt style sheet, with icon paths made absolute (QSS urls are cwd-relative)."""
    path = resources_dir() / "style.qss"
    text = path.read_text(encoding="utf-8")
    return text.replace("url(icons/", f"url({(resources_dir() / 'icons').as_posix()}/")
