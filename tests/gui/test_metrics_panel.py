"""client.metrics_panel: the agent's figures and their queues' live state as the router pushed
them (docs/metrics.md), service level now beside today's."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from client.cache_extras import Metrics
from client.metrics_panel import MetricsPanel


def test_queues_show_service_level_now_and_today_red_below_target(qtbot: QtBot) -> None:
    panel = MetricsPanel()
    qtbot.addWidget(panel)
    panel.show_metrics(Metrics())
    assert panel.queues.text() == "Waiting for the router's figures…"
    panel.show_metrics(
        Metrics(
            own={"handled": 3, "aht": 125.0, "asa": 9.0, "service_level": 0.9},
            queues={
                "support": {
                    "depth": 2,
                    "longest_wait": 41.0,
                    "service_level_now": 0.5,
                    "service_level": 0.9,
                    "target": 0.8,
                },
                "sales": {"depth": 0, "service_level_now": None, "service_level": None},
            },
        )
    )
    text = panel.queues.text()
    assert "SL&nbsp;now" in text and "Today" in text
    support = text[text.index("support") :]
    # SL now (50%) is below the 80% target: red; today's 90% is not.
    assert "color:#b42318'>50%" in support and "color:#1f2933'>90%" in support
    assert "—" in text[text.index("sales") : text.index("support")]  # nothing measured yet
    assert "support 80%" in panel.queues.toolTip()
    assert panel.values["service_level"].text() == "90%"
