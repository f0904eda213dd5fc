"""The app's colours in one place, shared by the style sheet's intent and custom painting.

Why: delegates paint with QPainter and cannot read the style sheet; keeping the few colours
here makes the painted rows match the styled widgets. Calm, low-contrast surfaces with one
accent: an agent looks at this for eight hours.
"""

from __future__ import annotations

from client.qt import QColor

TEXT = QColor("#1f2933")
TEXT_SECONDARY = QColor("#5f6b7a")
TEXT_FAINT = QColor("#8a94a3")
ACCENT = QColor("#2f63c8")
SURFACE = QColor("#ffffff")
WINDOW = QColor("#f3f5f8")
BORDER = QColor("#e1e5eb")
SELECTED = QColor("#e6eefc")
HOVER = QColor("#f5f7fb")
UNREAD = QColor("#2f63c8")

WAIT_COLOURS = {
    0: (QColor("#5f6b7a"), QColor(0, 0, 0, 0)),
    1: (QColor("#9a5b00"), QColor("#fdf1d6")),
    2: (QColor("#b42318"), QColor("#fde7e5")),
}

BUBBLE_IN = QColor("#ffffff")
BUBBLE_IN_BORDER = QColor("#dfe3ea")
BUBBLE_OUT = QColor("#e4edfc")
BUBBLE_OUT_BORDER = QColor("#cbd9f5")
BUBBLE_NOTE = QColor("#fff6d9")
BUBBLE_NOTE_BORDER = QColor("#f0dc9a")
FAILED = QColor("#b42318")
