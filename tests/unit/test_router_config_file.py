"""router.config_file: the TOML config is loaded whole, and every mistake names its key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from router import __main__ as router_main
from router.config_file import ConfigError, load_config_file, parse_config
from router.demo_config import DEMO_CONFIG

GOOD = """
skills = ["english", "french"]

[routing]
strategy = "round_robin"
wrap_up_timeout = 45
voice_blocks = []

[capacity]
chat = 4

[codes]
reasons = ["Break"]
wrap_up = ["done"]

[hours.office]
timezone = "Europe/Paris"
mon = "09:00-17:00"
tue = ["09:00-12:00", "13:00-17:00"]
closed_dates = ["2026-12-25"]

[queues.support]
priority = 2
skills = { english = 2 }
service_level = { percent = 90, seconds = 15 }
overflow = { after = 60, to = "fr" }
hours = "office"
out_of_hours_message = "We are closed."

[queues.fr]
skills = { french = 1 }

[agents.ana]
name = "Ana"
queues = ["support", "fr"]
skills = { english = 5, french = 3 }
capacity = { voice = 0 }

[agents.sam]
supervises = ["support"]
"""


def test_a_full_config_loads() -> None:
    cfg = parse_config(GOOD)
    assert cfg.strategy == "round_robin" and cfg.wrap_up_timeout == 45
    assert cfg.voice_blocks == () and cfg.capacity["chat"] == 4 and cfg.capacity["sms"] == 2
    support = cfg.queue_specs["support"]
    assert support.skills == {"english": 2} and support.priority == 2
    assert (support.service_level.percent, support.service_level.seconds) == (90, 15)
    assert (support.overflow_after, support.overflow_to) == (60, "fr")
    assert support.hours is not None and support.hours.ranges["tue"] == ((540, 720), (780, 1020))
    ana, sam = cfg.agents
    assert (ana.id, ana.queues, ana.skills["french"]) == ("a-ana", ("support", "fr"), 3)
    assert ana.capacity == {"voice": 0, "chat": 4, "sms": 2, "email": 5}
    assert sam.supervises == ("support",) and sam.password_hash is None


def test_business_hours_follow_the_time_zone_and_holidays() -> None:
    hours = parse_config(GOOD).queue_specs["support"].hours
    assert hours is not None
    # Monday 2026-11-23 08:30 UTC is 09:30 in Paris: open; 16:30 UTC is 17:30: closed.
    assert hours.is_open(1795422600.0)
    assert not hours.is_open(1795422600.0 + 8 * 3600)
    # Sunday: no hours at all.
    assert not hours.is_open(1795422600.0 - 86400)


def test_the_built_in_demo_config_is_valid() -> None:
    cfg = parse_config(DEMO_CONFIG)
    assert set(cfg.queue_specs) == {"support", "sales", "billing"}
    assert {a.username for a in cfg.agents} == {"ana", "ben", "chloe", "sam"}


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ("[queues.x]\nskills = { klingon = 1 }", "queues.x.skills.klingon"),
        ('[queues.x]\noverflow = { after = 5, to = "nowhere" }', "queues.x.overflow.to"),
        ('[agents.bob]\nqueues = ["nowhere"]', "agents.bob.queues"),
        ('[agents.bob]\nsupervises = ["nowhere"]', "agents.bob.supervises"),
        ("[agents.bob]\nskills = { english = 9 }", "agents.bob.skills.english"),
        ('[routing]\nstrategy = "fastest"', "routing.strategy"),
        ("[routing]\nofer_timeout = 3", "routing.ofer_timeout"),
        ('[queues.x]\nhours = "night"', "queues.x.hours"),
        ('[hours.h]\nmon = "9-5"', "hours.h.mon"),
        ('[hours.h]\ntimezone = "Mars/Olympus"', "hours.h.timezone"),
        ("[capacity]\nfax = 1", "capacity.fax"),
        ('[agents.bob]\npassword_hash = "plain"', "agents.bob.password_hash"),
        ('colour = "blue"', "colour"),
    ],
)
def test_mistakes_name_the_key(patch: str, key: str) -> None:
    text = 'skills = ["english"]\n' + patch
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert err.value.key == key
    assert str(err.value).startswith(key + ":")


def test_a_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config_file(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[queues\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config_file(broken)


def test_the_router_refuses_to_start_on_a_bad_config_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "router.toml"
    bad.write_text("skills = []\n[queues.support]\nskills = { klingon = 2 }\n")
    with caplog.at_level(logging.ERROR):
        status = router_main.main(["--config", str(bad), "--db", str(tmp_path / "r.db")])
    assert status == 2
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [
        "bad router config: queues.support.skills.klingon: unknown skill 'klingon' "
        "(known: none; list them in skills = [...])"
    ]
