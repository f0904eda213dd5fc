"""Interop with a second real user agent: baresip answers and sends a sine over G.722."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.phone.audio import read_samples, tone_report
from tests.phone.engine_peer import EnginePeer
from tests.phone.peers import free_port, rtp_base, stop_group
from tests.support.wait import wait_until

pytestmark = pytest.mark.phone

CONFIG = """\
poll_method		epoll
sip_listen		127.0.0.1:{port}
net_interface		127.0.0.1
audio_player		aufile,{workdir}/heard.wav
audio_source		ausine,{freq}
audio_alert		aufile,{workdir}/alert.wav
ausrc_srate		48000
auplay_srate		48000
ausrc_channels		2
auplay_channels		2
rtp_ports		{rtp}-{rtp_end}
module_path		/usr/lib/baresip/modules
module			g722.so
module			g711.so
module			ausine.so
module			aufile.so
module			account.so
"""


def _free_pair() -> int:
    """A port free for UDP/TCP whose next port is free too: baresip puts SIP over TLS on
    port + 1 and gives up if that is taken."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports")


class Baresip:
    """baresip with one auto-answering account (ausine needs 48 kHz stereo: hence the srate
    and channel lines; the UA resamples for the codec)."""

    def __init__(self, workdir: Path, freq: int) -> None:
        self.workdir = workdir
        self.port = _free_pair()
        rtp = rtp_base()
        workdir.mkdir()
        (workdir / "config").write_text(
            CONFIG.format(port=self.port, workdir=workdir, freq=freq, rtp=rtp, rtp_end=rtp + 39)
        )
        (workdir / "accounts").write_text("<sip:dave@127.0.0.1>;regint=0;answermode=auto\n")
        self.log_path = workdir / "baresip.log"
        self.proc = subprocess.Popen(
            ["baresip", "-f", str(workdir)],
            stdin=subprocess.DEVNULL,
            stdout=self.log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._bound, timeout=10, what="baresip listening")

    def _bound(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"baresip exited: {self.log_path.read_text()[-2000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                return True
        return False

    def stop(self) -> None:
        stop_group(self.proc)


@pytest.fixture
def baresip(tmp_path: Path) -> Iterator[Baresip]:
    if shutil.which("baresip") is None:
        pytest.fail("baresip is not installed (./dev test installs scripts/apt-test.txt)")
    b = Baresip(tmp_path / "baresip", 1300)
    try:
        yield b
    finally:
        b.stop()


def test_baresip_answers_and_its_g722_sine_is_heard(
    baresip: Baresip, engine_factory: Callable[..., EnginePeer]
) -> None:
    e = engine_factory("agent")
    e.request("register", user="agent", domain="127.0.0.1", registrar="")
    call = e.request("dial", to=f"sip:dave@127.0.0.1:{baresip.port}")["call"]
    e.wait_call_state(call, "confirmed")
    e.wait_event("quality", lambda q: q["call"] == call and q.get("rx_packets", 0) > 75)
    e.request("hangup", call=call)
    e.wait_call_state(call, "disconnected")
    samples, rate = read_samples(e.speaker)
    report = tone_report(samples, rate, 1300)
    assert report["purity"] > 0.9 and report["rms"] > 0.1, report
    assert "audio G722" in e.log_text()  # the wideband codec was chosen, not G.711
