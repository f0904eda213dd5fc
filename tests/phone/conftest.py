"""Fixtures for the phone tests: real Kamailio and engine processes on loopback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from softphone.native import build
from tests.phone.engine_peer import EnginePeer
from tests.phone.peers import Kamailio, free_port, need
from tests.phone.pulse import Pulse

# The panel/QProcess tests need a QApplication; ./dev test sets this, plain pytest may not.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}


@pytest.fixture(scope="session", autouse=True)
def native_audio_built() -> None:
    """The engines the tests start use the native port (softphone/native) when it is built;
    `./dev test` builds it, and so does this when pytest runs on its own. A failed build is
    said here, not left to surface as an engine quietly on its Python port."""
    why = build.build()
    if why is not None:
        pytest.fail(f"the native audio path did not build: {why}")


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[Kamailio]:
    """A registrar/proxy with users alice, bob and carol (passwords in USERS)."""
    need("kamailio")
    workdir = tmp_path / "kamailio"
    workdir.mkdir()
    port = free_port()
    k = Kamailio(port=port, domain=f"127.0.0.1:{port}", users=USERS, workdir=workdir)
    k.start()
    try:
        yield k
    finally:
        k.stop()


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[Pulse]:
    """A private PulseAudio daemon with a null-sink headset (tests/phone/pulse.py)."""
    need("pulseaudio", "pactl", "paplay", "parec")
    workdir = tmp_path / "pulse"
    workdir.mkdir()
    p = Pulse(workdir)
    p.start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def engine_factory(tmp_path: Path) -> Iterator[Callable[..., EnginePeer]]:
    """Start engine processes; all are shut down (and must exit 0) at the end."""
    started: list[EnginePeer] = []

    def start(
        name: str,
        mic: Path | None = None,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
    ) -> EnginePeer:
        peer = EnginePeer(tmp_path, name, mic, extra, env, prefix)
        started.append(peer)
        return peer

    yield start
    codes = {p.name: p.close() for p in started}
    bad = {n: c for n, c in codes.items() if c != 0}
    assert not bad, f"engines did not exit cleanly: {bad}\n" + "\n".join(
        p.log_text()[-2000:] for p in started if p.name in bad
    )
