"""The phone in the window: a real engine process, real Kamailio and SIPp, the real router.

An incoming SIPp call from a number the cache knows pops the customer's name and last
conversation; answering and the far end's hang-up reach the router as `call_event`s (checked
in its database). With no SIP account, the column says so and offers the settings.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from client.app import AppController, Options
from client.network_watch import NetworkWatch
from client.qt import QNetworkInformation, QSettings
from client.sip_settings import (
    SipAccount,
    SipSettingsDialog,
    load_account,
    load_turn_password,
    save_account,
    save_turn_password,
)
from tests.gui.test_central_login import MemoryKeyring, memory_keyring  # noqa: F401 (fixture)
from tests.phone.conftest import USERS, kamailio  # noqa: F401 (fixture)
from tests.phone.peers import Kamailio, rtp_base
from tests.phone.sipp import Sipp, uac_scenario
from tests.support.router_proc import DEMO_PASSWORD, RouterProcess
from tests.support.wait import deadline

T = int(deadline(20) * 1000)
NUMBER = "+15551234567"


@pytest.fixture
def app(qtbot: QtBot, tmp_path: Path) -> Iterator[tuple[RouterProcess, AppController]]:
    proc = RouterProcess(tmp_path / "router.db", ["--demo-agents"])
    with proc:
        phone_args = (
            "--backend",
            "null",
            "--bind",
            "127.0.0.1",
            "--rtp-port",
            str(rtp_base()),
            "--rtp-range",
            "40",
        )
        c = AppController(
            Options(data_dir=tmp_path / "app", router_url=proc.url, phone_args=phone_args)
        )
        qtbot.addWidget(c.window)
        c.window.show()
        c.connect_engine(proc.url, "ana", DEMO_PASSWORD)
        try:
            yield proc, c
        finally:
            c.shutdown()


def _calls(proc: RouterProcess) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{proc.db}?mode=ro", uri=True, timeout=5) as db:
        return list(db.execute("SELECT agent_id, direction, remote, state FROM calls"))


def _call_ends(proc: RouterProcess) -> list[tuple[Any, ...]]:
    """(state, reason, code) of the call facts the router logged with a reason."""
    with sqlite3.connect(f"file:{proc.db}?mode=ro", uri=True, timeout=5) as db:
        return list(
            db.execute(
                "SELECT json_extract(data, '$.state'), json_extract(data, '$.reason'), "
                "json_extract(data, '$.code') FROM facts "
                "WHERE kind = 'call' AND json_extract(data, '$.reason') IS NOT NULL"
            )
        )


_BRANCH = "branch=z9hG4bK-sb-cancel-[call_number]"
"""One fixed branch for the INVITE, its CANCEL and the ACK of the 487 (RFC 3261 9.1)."""


def cancel_scenario(caller: str, ring_ms: int) -> str:
    """A UAC that calls the engine, lets it ring `ring_ms` and hangs up before an answer
    (CANCEL; the engine answers 200 and ends the INVITE with 487)."""
    invite = uac_scenario().split('  <recv response="100"')[0].replace("branch=[branch]", _BRANCH)
    tag = "tag=[pid]SIPpTag00[call_number]"
    dialog = f"""From: "Queue Support" <sip:{caller}@[local_ip]:[local_port]>;{tag}
Call-ID: [call_id]
Max-Forwards: 70
Content-Length: 0"""
    invite = invite.replace("sip:queue@", f"sip:{caller}@")
    return (
        invite
        + f"""  <recv response="100" optional="true"/>
  <recv response="180"/>
  <pause milliseconds="{ring_ms}"/>
  <send><![CDATA[
CANCEL sip:agent@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];{_BRANCH}
To: <sip:agent@[remote_ip]:[remote_port]>
CSeq: 1 CANCEL
{dialog}
]]></send>
  <recv response="200"/>
  <recv response="487"/>
  <send><![CDATA[
ACK sip:agent@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];{_BRANCH}
To: <sip:agent@[remote_ip]:[remote_port]>[peer_tag_param]
CSeq: 1 ACK
{dialog}
]]></send>
</scenario>
"""
    )


def test_no_sip_account_says_so_and_offers_settings(
    qtbot: QtBot, app: tuple[RouterProcess, AppController]
) -> None:
    _, c = app
    column = c.window.phone
    column.start()
    assert column.stack.currentWidget() is column.setup_page
    assert column.setup_message.text() == "No SIP account is set up."
    assert column.settings_button.isVisibleTo(column)
    assert c.window.phone_engine.state == "stopped"  # no engine, no fake registration


def test_incoming_call_pops_the_customer_and_reaches_the_router(
    qtbot: QtBot,
    app: tuple[RouterProcess, AppController],
    kamailio: Kamailio,
    memory_keyring: MemoryKeyring,
    tmp_path: Path,
) -> None:
    proc, c = app
    qtbot.waitUntil(lambda: c.window.status.connection.text() == "Connected to router", timeout=T)
    cid = proc.inbound("sms", NUMBER, "Grace Hopper", "Is my refund on its way?", "support")
    qtbot.waitUntil(lambda: c.reader.header(cid) is not None, timeout=T)

    # The agent saves the account in Phone settings: QSettings keeps no password.
    column = c.window.phone
    column.apply_settings(SipAccount(domain=kamailio.domain, username="alice"), USERS["alice"])
    assert load_account() == SipAccount(domain=kamailio.domain, username="alice")
    assert USERS["alice"] not in Path(QSettings().fileName()).read_text()
    panel = column.panel
    qtbot.waitUntil(lambda: panel.registration.text() == "Registered — ready for calls", timeout=T)
    # ... the password went to the keychain (and not to the QSettings file above).
    qtbot.waitUntil(
        lambda: (
            memory_keyring.store.get(("switchboard-sip", f"alice@{kamailio.domain}"))
            == USERS["alice"]
        ),
        timeout=T,
    )

    port = int(c.window.phone_engine.ready["sip_ports"]["udp"])
    scenario = uac_scenario(talk_ms=1000).replace("sip:queue@", f"sip:{NUMBER}@")
    sipp = Sipp(tmp_path, scenario, "caller")
    sipp.start(remote=f"127.0.0.1:{port}")
    try:
        qtbot.waitUntil(lambda: column.pop.isVisible() and bool(panel.rows), timeout=T)
        assert column.pop.name.text() == "Grace Hopper"
        assert "refund" in column.pop.detail.text()
        column.pop.open_button.click()
        qtbot.waitUntil(lambda: c.window.conversation.conversation_id == cid, timeout=T)

        qtbot.waitUntil(
            lambda: (
                ("a-ana", "in", NUMBER) in {r[:3] for r in _calls(proc)}
                or any(NUMBER in r[2] for r in _calls(proc))
            ),
            timeout=T,
        )
        # A message while the pop and a call are in the column: shown above the dial field
        # and the calls, where a column taller than the window cannot scroll it away (the
        # docs' phone-audio-error screenshot, with an offer and the metrics above it).
        panel.number.clear()
        panel.dial()
        assert panel.error.text() == "Type a number or SIP address first."
        assert panel.error.isVisible() and panel.error.y() < panel.number.y()
        (row,) = panel.rows.values()
        row.answer.click()
        qtbot.waitUntil(lambda: any(r[3] == "connected" for r in _calls(proc)), timeout=T)
        # SIPp hangs up after a second: the router hears the end of the call.
        qtbot.waitUntil(lambda: any(r[3] == "ended" for r in _calls(proc)), timeout=T)
        assert sipp.wait() == 0, sipp.output()
    finally:
        sipp.stop()
    ((agent, direction, remote, state),) = _calls(proc)
    assert (agent, direction, state) == ("a-ana", "in", "ended") and NUMBER in remote
    qtbot.waitUntil(lambda: not column.pop.isVisible(), timeout=T)


def _trunk_port(qtbot: QtBot, c: AppController) -> int:
    """Online, with a PBX-trunk account (no registrar): the engine's SIP port, where calls
    come straight in."""
    qtbot.waitUntil(lambda: c.window.status.connection.text() == "Connected to router", timeout=T)
    c.window.phone.start(SipAccount(domain="127.0.0.1", username="agent"), password="")
    qtbot.waitUntil(lambda: "sip_ports" in c.window.phone_engine.ready, timeout=T)
    return int(c.window.phone_engine.ready["sip_ports"]["udp"])


def test_an_unknown_caller_declined_is_reported_missed(
    qtbot: QtBot, app: tuple[RouterProcess, AppController], tmp_path: Path
) -> None:
    proc, c = app
    column = c.window.phone
    port = _trunk_port(qtbot, c)
    scenario = uac_scenario(talk_ms=1000).replace("sip:queue@", "sip:+4930123456@")
    sipp = Sipp(tmp_path, scenario, "stranger")
    sipp.start(remote=f"127.0.0.1:{port}")
    try:
        qtbot.waitUntil(lambda: column.pop.isVisible() and bool(column.panel.rows), timeout=T)
        assert column.pop.name.text() == "+4930123456"
        assert column.pop.detail.text() == "Not a customer we know yet."
        assert not column.pop.open_button.isVisibleTo(column)
        (row,) = column.panel.rows.values()
        row.decline.click()
        qtbot.waitUntil(lambda: [r[3] for r in _calls(proc)] == ["missed"], timeout=T)
        # Declined, not abandoned: the router is told why (docs/metrics.md, "Voice").
        qtbot.waitUntil(lambda: _call_ends(proc) == [("missed", "declined", 486)], timeout=T)
    finally:
        sipp.stop()


def test_a_caller_who_hangs_up_while_ringing_is_reported_as_caller_cancel(
    qtbot: QtBot, app: tuple[RouterProcess, AppController], tmp_path: Path
) -> None:
    proc, c = app
    port = _trunk_port(qtbot, c)
    sipp = Sipp(tmp_path, cancel_scenario("+4930123456", ring_ms=500), "canceller")
    sipp.start(remote=f"127.0.0.1:{port}")
    try:
        assert sipp.wait() == 0, sipp.output()
        qtbot.waitUntil(lambda: _call_ends(proc) == [("missed", "caller_cancel", 487)], timeout=T)
        ((agent, direction, _remote, state),) = _calls(proc)
        assert (agent, direction, state) == ("a-ana", "in", "missed")
    finally:
        sipp.stop()


def test_settings_dialog_needs_domain_and_user_and_keeps_the_password_apart(
    qtbot: QtBot,
) -> None:
    dlg = SipSettingsDialog(None)
    qtbot.addWidget(dlg)
    dlg.username.setText("alice")
    dlg._accept()
    assert dlg.result() != SipSettingsDialog.DialogCode.Accepted
    assert "domain" in dlg.error.text()
    dlg.domain.setText(" pbx.example.com ")
    dlg.password.setText("s3cret")
    dlg.transport.setCurrentIndex(dlg.transport.findData("tls"))
    dlg._accept()
    assert dlg.result() == SipSettingsDialog.DialogCode.Accepted
    account = dlg.account()
    assert account == SipAccount("pbx.example.com", "alice", transport="tls")
    assert "s3cret" not in repr(account)


def test_remote_work_settings_need_ice_for_turn_and_keep_the_turn_password_apart(
    qtbot: QtBot, memory_keyring: MemoryKeyring
) -> None:
    dlg = SipSettingsDialog(None)
    qtbot.addWidget(dlg)
    dlg.domain.setText("pbx.example.com")
    dlg.username.setText("alice")
    dlg.stun.setText("stun.example.com:3478")
    dlg.turn.setText("turn.example.com:3478")
    dlg.turn_user.setText("agent")
    dlg.turn_password.setText("turn-s3cret")
    dlg._accept()
    assert dlg.result() != SipSettingsDialog.DialogCode.Accepted
    assert "ICE" in dlg.error.text()
    dlg.ice.setChecked(True)
    dlg._accept()
    assert dlg.result() == SipSettingsDialog.DialogCode.Accepted
    account = dlg.account()
    assert account.register_args("pw", "turn-s3cret") == {
        "user": "alice",
        "domain": "pbx.example.com",
        "transport": "udp",
        "password": "pw",
        "stun_servers": ["stun.example.com:3478"],
        "ice": True,
        "turn_server": "turn.example.com:3478",
        "turn_user": "agent",
        "turn_password": "turn-s3cret",
    }
    save_account(account)
    assert load_account() == account
    assert "turn-s3cret" not in Path(QSettings().fileName()).read_text()
    save_turn_password(account, "turn-s3cret")
    assert load_turn_password(account) == "turn-s3cret"
    assert memory_keyring.store[("switchboard-sip", "turn:agent@turn.example.com:3478")]


def test_a_new_sip_password_keeps_the_stored_turn_password(
    qtbot: QtBot, app: tuple[RouterProcess, AppController], memory_keyring: MemoryKeyring
) -> None:
    """The TURN password field says "Kept in the system keychain": left empty while the SIP
    password is typed again, the register command still carries the stored one."""
    _proc, c = app
    column = c.window.phone
    account = SipAccount(
        domain="127.0.0.1",
        username="agent",
        ice=True,
        turn_server="127.0.0.1:3478",
        turn_user="agent",
    )
    save_turn_password(account, "turn-s3cret")
    column.apply_settings(account, "new-sip-pw", "")

    def register_args() -> dict[str, Any]:
        return dict(c.window.phone_engine._replay.get("register:default", ("", {}))[1])

    qtbot.waitUntil(lambda: register_args().get("password") == "new-sip-pw", timeout=T)
    qtbot.waitUntil(lambda: register_args().get("turn_password") == "turn-s3cret", timeout=T)


def test_an_ice_account_from_the_settings_registers(
    qtbot: QtBot,
    app: tuple[RouterProcess, AppController],
    kamailio: Kamailio,
    memory_keyring: MemoryKeyring,
) -> None:
    """The remote-work fields reach the real engine: ICE on, registered at Kamailio."""
    _proc, c = app
    column = c.window.phone
    column.apply_settings(
        SipAccount(domain=kamailio.domain, username="alice", ice=True), USERS["alice"]
    )
    panel = column.panel
    qtbot.waitUntil(lambda: panel.registration.text() == "Registered — ready for calls", timeout=T)
    assert panel.error.text() == ""
    assert load_account() == SipAccount(domain=kamailio.domain, username="alice", ice=True)


def test_the_network_coming_back_re_registers_the_phone_at_once(
    qtbot: QtBot,
    app: tuple[RouterProcess, AppController],
    kamailio: Kamailio,
    memory_keyring: MemoryKeyring,
) -> None:
    """Qt's network information says the machine is back online: the app asks the engine to
    re-register (handleIpChange) instead of waiting for its route watcher."""
    _proc, c = app
    column = c.window.phone
    column.apply_settings(SipAccount(domain=kamailio.domain, username="alice"), USERS["alice"])
    panel = column.panel
    qtbot.waitUntil(lambda: panel.registration.text() == "Registered — ready for calls", timeout=T)
    events: list[tuple[str, dict[str, Any]]] = []
    c.window.phone_engine.engine_event.connect(lambda name, data: events.append((name, data)))

    watch = NetworkWatch(c)  # the real backend; its signals are driven by hand below
    whys: list[str] = []
    watch.back_online.connect(whys.append)
    watch.back_online.connect(c.on_back_online)
    watch.on_reachability(QNetworkInformation.Reachability.Disconnected)
    watch.on_reachability(QNetworkInformation.Reachability.Disconnected)
    assert whys == [] and events == []  # going down re-registers nothing
    watch.on_reachability(QNetworkInformation.Reachability.Online)
    assert whys == ["network reachable again (Online)"]
    # handleIpChange re-registers: a fresh REGISTER and its 200 make a new reg_state.
    qtbot.waitUntil(
        lambda: any(n == "reg_state" and d["state"] == "Registered" for n, d in events),
        timeout=T,
    )
    watch.on_reachability(QNetworkInformation.Reachability.Online)
    assert len(whys) == 1  # still up: nothing new
    watch.on_transport(QNetworkInformation.TransportMedium.Ethernet)
    assert whys[-1] == "network transport changed to Ethernet"
