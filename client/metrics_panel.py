"""The agent's own figures today and their queues' live state, compact, in the right column.

Why it reads the `metrics` cache table (and is repainted only when the engine says that table
changed): the router pushes at most once a second; the UI never polls or waits for it.
"""

from __future__ import annotations

import logging
from typing import Any

from client.cache_extras import Metrics
from client.formatting import duration
from client.qt import QGridLayout, QLabel, Qt, QVBoxLayout, QWidget

log = logging.getLogger(__name__)

QUEUES_TIP = (
    "Per queue: waiting now, the oldest wait, service level of the last 30 minutes (SL now) "
    "and of today; red below the queue's target"
)


def _secs(value: Any) -> str:
    return duration(float(value)) if isinstance(value, int | float) else "—"


def _pct(value: Any) -> str:
    return f"{round(float(value) * 100)}%" if isinstance(value, int | float) else "—"


def _count(value: Any) -> str:
    return str(int(value)) if isinstance(value, int | float) else "—"


class MetricsPanel(QWidget):
    """Handled, AHT, ASA and service level today; per queue: waiting, longest wait, service
    level now (last 30 minutes: what a supervisor acts on) and today against the target."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("metricsPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setAccessibleName("Your figures today")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 10, 16, 8)
        layout.setSpacing(4)
        title = QLabel("Today", self)
        title.setObjectName("panelTitle")
        layout.addWidget(title)
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(0)
        self.values: dict[str, QLabel] = {}
        for col, (key, caption) in enumerate(
            (("handled", "Handled"), ("aht", "AHT"), ("asa", "ASA"), ("service_level", "SL"))
        ):
            value = QLabel("—", self)
            value.setObjectName("metricValue")
            cap = QLabel(caption, self)
            cap.setObjectName("metricCaption")
            grid.addWidget(value, 0, col)
            grid.addWidget(cap, 1, col)
            self.values[key] = value
        layout.addLayout(grid)
        self.queues = QLabel("Waiting for the router's figures…", self)
        self.queues.setObjectName("metricQueues")
        self.queues.setWordWrap(True)
        self.queues.setToolTip(QUEUES_TIP)
        layout.addWidget(self.queues)

    def show_metrics(self, m: Metrics) -> None:
        """Show the figures the router last pushed (— where it has none yet)."""
        self.values["handled"].setText(_count(m.own.get("handled")))
        self.values["aht"].setText(_secs(m.own.get("aht")))
        self.values["asa"].setText(_secs(m.own.get("asa")))
        self.values["service_level"].setText(_pct(m.own.get("service_level")))
        if not m.own and not m.queues:
            self.queues.setText("Waiting for the router's figures…")
            return
        if not m.queues:
            self.queues.setText("No queues")
            return
        # One row per queue, aligned columns: scannable at a glance all shift long.
        head = (
            "<tr style='color:#8a94a3'><td>Queue</td><td align='right'>Wait</td>"
            "<td align='right'>Oldest</td><td align='right'>SL&nbsp;now</td>"
            "<td align='right'>Today</td></tr>"
        )
        rows: list[str] = []
        targets: list[str] = []
        for name, q in sorted(m.queues.items()):
            depth = int(q.get("depth") or 0)
            oldest = _secs(q.get("longest_wait")) if depth else "—"
            now, level, target = q.get("service_level_now"), q.get("service_level"), q.get("target")
            rows.append(
                f"<tr><td><b>{_esc(name)}</b></td><td align='right'>{depth}</td>"
                f"<td align='right'>{oldest}</td>"
                f"<td align='right' style='color:{_colour(now, target)}'>{_pct(now)}</td>"
                f"<td align='right' style='color:{_colour(level, target)}'>{_pct(level)}</td></tr>"
            )
            targets.append(f"{name} {_pct(target)}")
        self.queues.setToolTip(f"{QUEUES_TIP}\nService-level targets: {', '.join(targets)}")
        self.queues.setText(
            f"<table width='100%' cellspacing='0' cellpadding='1'>{head}{''.join(rows)}</table>"
        )


def _colour(level: Any, target: Any) -> str:
    """Red below the target, so a queue falling behind stands out."""
    below = isinstance(level, int | float) and isinstance(target, int | float) and level < target
    return "#b42318" if below else "#1f2933"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
