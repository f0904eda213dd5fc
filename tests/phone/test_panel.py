"""The phone panel on a real engine process and a real SIPp peer (offscreen Qt)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.phone.engine_process import PhoneEngineProcess
from client.phone.panel import PhonePanel
from client.qt import Qt
from tests.phone.peers import rtp_base
from tests.phone.sipp import Sipp, uas_scenario, write_ulaw_tone
from tests.support.wait import deadline

pytestmark = pytest.mark.phone

MS = 1000


@pytest.fixture
def panel(qtbot: Any) -> Iterator[PhonePanel]:
    engine = PhoneEngineProcess(
        ["--bind", "127.0.0.1", "--rtp-port", str(rtp_base()), "--rtp-range", "40"]
    )
    view = PhonePanel(engine)
    qtbot.addWidget(view)
    engine.start()
    try:
        yield view
    finally:
        engine.stop()


def test_dial_hold_resume_and_hang_up_from_the_panel(
    qtbot: Any, panel: PhonePanel, tmp_path: Path
) -> None:
    sipp = Sipp(
        tmp_path, uas_scenario(write_ulaw_tone(tmp_path / "t.ul", 1000, 1), hold_checks=True)
    )
    sipp.start()
    try:
        qtbot.waitUntil(lambda: panel.engine.state == "running", timeout=int(deadline(10) * MS))
        panel.command("register", user="agent", domain="127.0.0.1", registrar="")
        panel.number.setText(f"sip:service@127.0.0.1:{sipp.port}")
        qtbot.mouseClick(panel.call_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: any(r.state == "confirmed" for r in panel.rows.values()),
            timeout=int(deadline(10) * MS),
        )
        (row,) = panel.rows.values()
        assert row.status.text() == "In call" and row.hold.isVisibleTo(panel)
        assert not row.answer.isVisibleTo(panel)
        qtbot.mouseClick(row.hold, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: row.status.text() == "On hold", timeout=int(deadline(10) * MS))
        assert row.hold.text() == "Resume"
        qtbot.mouseClick(row.hold, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: row.status.text() == "In call", timeout=int(deadline(10) * MS))
        qtbot.waitUntil(lambda: "MOS" in row.quality.text(), timeout=int(deadline(10) * MS))
        qtbot.mouseClick(row.hangup, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not panel.rows, timeout=int(deadline(10) * MS))
        assert sipp.wait() == 0, sipp.output()
    finally:
        sipp.stop()
    assert panel.error.text() == ""


def test_a_refused_number_is_explained_in_words(qtbot: Any, panel: PhonePanel) -> None:
    qtbot.waitUntil(lambda: panel.engine.state == "running", timeout=int(deadline(10) * MS))
    panel.command("register", user="agent", domain="127.0.0.1", registrar="")
    panel.number.setText("+1 (no digits)")
    qtbot.mouseClick(panel.call_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "phone number" in panel.error.text(), timeout=int(deadline(10) * MS))
    assert not panel.rows


def test_the_engine_re_registering_on_its_own_is_shown(qtbot: Any, panel: PhonePanel) -> None:
    # The event as the engine sends it (tests/phone/test_netwatch.py makes a real one in
    # network namespaces, which this Qt test cannot join).
    qtbot.waitUntil(lambda: panel.engine.state == "running", timeout=int(deadline(10) * MS))
    for reason, words in (("address", "on the new network"), ("wake", "after sleep")):
        data = {"reason": reason, "detail": "", "routes": {}, "accounts": ["default"]}
        panel.engine.engine_event.emit("network_change", data)
        assert panel.registration.text() == f"Registering again {words}…"
