"""Load and validate the router config file (TOML): queues, skills, agents, codes, hours.

Every mistake is a `ConfigError` naming the key it is about (`queues.support.skills.klingon:
unknown skill ...`), so the operator fixes the file from one log line; the router refuses to
start on a bad file rather than run with half of it. See docs/routing.md for the format.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from router.config import CHANNELS, DEFAULT_CAPACITY, RouterConfig
from router.model import DAYS, STRATEGIES, AgentSpec, Hours, QueueSpec, ServiceLevel

log = logging.getLogger(__name__)

_TOP = {"routing", "capacity", "codes", "skills", "hours", "queues", "agents"}
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ConfigError(ValueError):
    """The config file is wrong at `key`."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def load_config_file(path: Path, base: RouterConfig | None = None) -> RouterConfig:
    """Read `path` and return `base` (or the defaults) with the file's settings.

    Raises:
        ConfigError: unreadable file, TOML syntax, unknown key, wrong type, unknown queue or
            skill, bad hours; the message names the key.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the config file: {exc.strerror}") from exc
    return parse_config(text, base, source=str(path))


def parse_config(
    text: str, base: RouterConfig | None = None, source: str = "config"
) -> RouterConfig:
    """Parse TOML text into a `RouterConfig` (see `load_config_file`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"not valid TOML: {exc}") from exc
    return build_config(data, base or RouterConfig())


def _table(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(_k(where, key), "must be a table")
    return value


def _k(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(_k(where, key), f"unknown key (known: {', '.join(sorted(allowed))})")


def _num(value: Any, key: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ConfigError(key, f"must be a number >= {low:g}")
    return float(value)


def _int(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key, f"must be a whole number from {low} to {high}")
    return value


def _names(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(key, "must be a list of non-empty strings")
    return tuple(value)


def _skill_levels(value: Any, key: str, skills: tuple[str, ...]) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a table of skill = level (1-5)")
    out: dict[str, int] = {}
    for skill, level in value.items():
        if skill not in skills:
            raise ConfigError(
                _k(key, skill),
                f"unknown skill {skill!r} (known: "
                f"{', '.join(skills) or 'none; list them in skills = [...]'})",
            )
        out[skill] = _int(level, _k(key, skill), 1, 5)
    return out


def _capacity(value: Any, key: str, defaults: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a table of channel = count")
    out = dict(defaults)
    for channel, n in value.items():
        if channel not in CHANNELS:
            raise ConfigError(_k(key, channel), f"unknown channel (known: {', '.join(CHANNELS)})")
        out[channel] = _int(n, _k(key, channel), 0, 1000)
    return out


def _minutes(text: str, key: str) -> tuple[int, int]:
    m = _RANGE.match(text.strip())
    if not m:
        raise ConfigError(key, f'{text!r} is not a range like "09:00-17:30"')
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or end > 24 * 60 or start >= end:
        raise ConfigError(key, f"{text!r} is not a valid range within one day")
    return start, end


def _hours(name: str, data: Any, key: str) -> Hours:
    if not isinstance(data, dict):
        raise ConfigError(key, "must be a table")
    _unknown(data, {"timezone", "closed_dates", *DAYS}, key)
    tz = data.get("timezone", "UTC")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(_k(key, "timezone"), f"unknown time zone {tz!r}") from exc
    ranges: dict[str, tuple[tuple[int, int], ...]] = {}
    for day in DAYS:
        value = data.get(day)
        if value is None:
            continue
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(_k(key, day), "must be a range string or a list of them")
        ranges[day] = tuple(_minutes(i, _k(key, day)) for i in items)
    closed = _names(data.get("closed_dates", []), _k(key, "closed_dates"))
    return Hours(name, str(tz), ranges, frozenset(closed))


def _queue(
    name: str,
    data: Any,
    key: str,
    cfg: RouterConfig,
    hours: Mapping[str, Hours],
    queue_names: set[str],
) -> QueueSpec:
    if not isinstance(data, dict):
        raise ConfigError(key, "must be a table")
    _unknown(
        data,
        {"skills", "priority", "service_level", "overflow", "hours", "out_of_hours_message"},
        key,
    )
    sl = _table(data, "service_level", key)
    _unknown(sl, {"percent", "seconds"}, _k(key, "service_level"))
    level = ServiceLevel(
        _num(sl.get("percent", 80), _k(key, "service_level.percent")),
        _num(sl.get("seconds", 20), _k(key, "service_level.seconds")),
    )
    if level.percent > 100:
        raise ConfigError(_k(key, "service_level.percent"), "must be at most 100")
    overflow = _table(data, "overflow", key)
    _unknown(overflow, {"after", "to"}, _k(key, "overflow"))
    after: float | None = None
    to: str | None = None
    if overflow:
        if "after" not in overflow or "to" not in overflow:
            raise ConfigError(_k(key, "overflow"), "needs both after (seconds) and to (queue)")
        after = _num(overflow["after"], _k(key, "overflow.after"))
        to = overflow["to"]
        if to not in queue_names:
            raise ConfigError(_k(key, "overflow.to"), f"unknown queue {to!r}")
        if to == name:
            raise ConfigError(_k(key, "overflow.to"), "a queue cannot overflow to itself")
    hours_name = data.get("hours")
    queue_hours: Hours | None = None
    if hours_name is not None:
        if hours_name not in hours:
            raise ConfigError(
                _k(key, "hours"), f"unknown hours {hours_name!r} (define [hours.{hours_name}])"
            )
        queue_hours = hours[hours_name]
    message = data.get("out_of_hours_message", "")
    if not isinstance(message, str):
        raise ConfigError(_k(key, "out_of_hours_message"), "must be a string")
    priority = _int(data.get("priority", 0), _k(key, "priority"), -1000, 1000)
    skills = _skill_levels(data.get("skills", {}), _k(key, "skills"), cfg.skills)
    return QueueSpec(name, skills, priority, level, after, to, queue_hours, message)


def _agent(username: str, data: Any, key: str, cfg: RouterConfig) -> AgentSpec:
    if not isinstance(data, dict):
        raise ConfigError(key, "must be a table")
    _unknown(
        data, {"id", "name", "queues", "skills", "capacity", "supervises", "password_hash"}, key
    )
    queues = _names(data.get("queues", []), _k(key, "queues"))
    supervises = _names(data.get("supervises", []), _k(key, "supervises"))
    for field_name, names in (("queues", queues), ("supervises", supervises)):
        for q in names:
            if q not in cfg.queue_specs:
                raise ConfigError(
                    _k(key, field_name),
                    f"unknown queue {q!r} (known: {', '.join(cfg.queue_specs)})",
                )
    password_hash = data.get("password_hash")
    if password_hash is not None and (
        not isinstance(password_hash, str) or not password_hash.startswith("scrypt$")
    ):
        raise ConfigError(
            _k(key, "password_hash"), "must be a scrypt$... hash (python -m router hash-password)"
        )
    name = data.get("name", username)
    agent_id = data.get("id", f"a-{username}")
    for k, v in (("name", name), ("id", agent_id)):
        if not isinstance(v, str) or not v:
            raise ConfigError(_k(key, k), "must be a non-empty string")
    return AgentSpec(
        id=agent_id,
        username=username,
        name=name,
        queues=queues,
        skills=_skill_levels(data.get("skills", {}), _k(key, "skills"), cfg.skills),
        capacity=_capacity(data.get("capacity", {}), _k(key, "capacity"), cfg.capacity),
        supervises=supervises,
        password_hash=password_hash,
    )


def build_config(data: Mapping[str, Any], base: RouterConfig) -> RouterConfig:
    """A `RouterConfig` from parsed TOML (see `load_config_file`)."""
    _unknown(data, _TOP, "")
    routing = _table(data, "routing", "")
    _unknown(
        routing,
        {
            "strategy",
            "offer_timeout",
            "reoffer_after",
            "wrap_up_timeout",
            "voice_blocks",
            "grace",
            "fcr_days",
        },
        "routing",
    )
    strategy = routing.get("strategy", base.strategy)
    if strategy not in STRATEGIES:
        raise ConfigError(
            "routing.strategy", f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})"
        )
    voice_blocks = _names(
        routing.get("voice_blocks", list(base.voice_blocks)), "routing.voice_blocks"
    )
    for channel in voice_blocks:
        if channel not in CHANNELS:
            raise ConfigError("routing.voice_blocks", f"unknown channel {channel!r}")
    codes = _table(data, "codes", "")
    _unknown(codes, {"reasons", "wrap_up"}, "codes")
    cfg = replace(
        base,
        strategy=strategy,
        voice_blocks=voice_blocks,
        offer_timeout=_num(
            routing.get("offer_timeout", base.offer_timeout), "routing.offer_timeout", 1
        ),
        reoffer_after=_num(
            routing.get("reoffer_after", base.reoffer_after), "routing.reoffer_after"
        ),
        wrap_up_timeout=_num(
            routing.get("wrap_up_timeout", base.wrap_up_timeout), "routing.wrap_up_timeout"
        ),
        disconnect_grace=_num(routing.get("grace", base.disconnect_grace), "routing.grace"),
        fcr_window=86400
        * _num(routing.get("fcr_days", base.fcr_window / 86400), "routing.fcr_days"),
        capacity=_capacity(_table(data, "capacity", ""), "capacity", DEFAULT_CAPACITY),
        skills=_names(data.get("skills", []), "skills"),
        reason_codes=_names(codes.get("reasons", list(base.reason_codes)), "codes.reasons"),
        wrap_up_codes=_names(codes.get("wrap_up", list(base.wrap_up_codes)), "codes.wrap_up"),
    )
    for skill in cfg.skills:
        if not _NAME.match(skill):
            raise ConfigError("skills", f"{skill!r} is not a valid skill name")
    hours = {
        name: _hours(name, h, f"hours.{name}") for name, h in _table(data, "hours", "").items()
    }
    queues_data = _table(data, "queues", "")
    if queues_data:
        for name in queues_data:
            if not _NAME.match(name):
                raise ConfigError(f"queues.{name}", "not a valid queue name")
        specs = {
            name: _queue(name, q, f"queues.{name}", cfg, hours, set(queues_data))
            for name, q in queues_data.items()
        }
        cfg = replace(cfg, queue_specs=specs)
    agents = tuple(_agent(u, a, f"agents.{u}", cfg) for u, a in _table(data, "agents", "").items())
    ids = [a.id for a in agents]
    for agent in agents:
        if ids.count(agent.id) > 1:
            raise ConfigError(f"agents.{agent.username}.id", f"duplicate agent id {agent.id!r}")
    log.debug(
        "config: %d queues, %d skills, %d agents",
        len(cfg.queue_specs),
        len(cfg.skills),
        len(agents),
    )
    return replace(cfg, agents=agents)
