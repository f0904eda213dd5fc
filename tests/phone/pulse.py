"""A private, headless PulseAudio daemon whose null sinks and remapped source are a headset.

- `headset_ear` (null sink, "Headset-Earpiece"): what the engine plays; its monitor is
  recorded by `parec` to check what the agent would hear.
- `mic_feed` (null sink) -> `headset_mic` (remap of its monitor, "Headset-Microphone"): the
  test plays a tone into `mic_feed` and the engine records it as the agent's microphone.

The daemon runs as root with anonymous auth on a socket in the test's temp dir; it is
stopped by the pid it wrote (the process we started), so nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

from tests.support.wait import wait_until

PA_SCRIPT = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name=headset_ear \
sink_properties=device.description=Headset-Earpiece
load-module module-null-sink sink_name=speakers sink_properties=device.description=Speakers
load-module module-null-sink sink_name=mic_feed sink_properties=device.description=Mic-Feed
load-module module-remap-source source_name=headset_mic master=mic_feed.monitor \
source_properties=device.description=Headset-Microphone
set-default-sink headset_ear
set-default-source headset_mic
"""


class Pulse:
    """One PulseAudio daemon; `env` is what its clients need (PULSE_SERVER)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.socket = workdir / "native"
        self.runtime = workdir / "run"
        self.env = dict(
            os.environ,
            PULSE_SERVER=f"unix:{self.socket}",
            HOME=str(workdir),
            PULSE_RUNTIME_PATH=str(self.runtime),
            PULSE_STATE_PATH=str(workdir / "state"),
        )
        self.pid: int | None = None
        self.log_path = workdir / "pulseaudio.log"

    def start(self) -> None:
        """Start the daemon and wait until pactl sees the headset devices."""
        script = self.workdir / "default.pa"
        script.write_text(PA_SCRIPT.format(socket=self.socket))
        subprocess.run(
            [
                "pulseaudio",
                "-n",
                "-F",
                str(script),
                "--daemonize=yes",
                "--exit-idle-time=-1",
                f"--log-target=file:{self.log_path}",
            ],
            env=self.env,
            check=True,
            timeout=30,
            cwd=self.workdir,
        )
        pid_file = self.runtime / "pid"
        wait_until(pid_file.exists, timeout=10, what="pulseaudio's pid file")
        self.pid = int(pid_file.read_text().split()[0])
        wait_until(
            lambda: "headset_mic" in self.pactl("list", "short", "sources"),
            timeout=10,
            what="the headset microphone in pulseaudio",
        )

    def pactl(self, *args: str) -> str:
        """Run pactl against this daemon; its stdout."""
        return subprocess.run(
            ["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10
        ).stdout

    def source_outputs(self, source: str = "headset_mic") -> list[str]:
        """Capture streams open on `source` (the engine's microphone while a call needs it);
        the remap module's own stream and parec's recording are on other sources."""
        index = None
        for line in self.pactl("list", "short", "sources").splitlines():
            cols = line.split("\t")
            if len(cols) > 1 and cols[1] == source:
                index = cols[0]
        lines = self.pactl("list", "short", "source-outputs").splitlines()
        return [line for line in lines if line.strip() and line.split("\t")[1] == index]

    def play(self, wav: Path, device: str = "mic_feed") -> subprocess.Popen[bytes]:
        """Play a WAV into `device` with low latency (a null-sink monitor stays silent for
        about a second unless its feeder asks for low latency)."""
        return subprocess.Popen(
            ["paplay", f"--device={device}", "--latency-msec=20", str(wav)],
            env=self.env,
            start_new_session=True,
        )

    def mouth(self, device: str, rate: int = 16000, channels: int = 1) -> Mouth:
        """A microphone that is always on, playing into `device` (see `Mouth`)."""
        return Mouth(self, device, rate, channels)

    def record(
        self, out: Path, device: str = "headset_ear.monitor", rate: int = 16000
    ) -> subprocess.Popen[bytes]:
        """Record `device` into a mono 16-bit WAV until the process is stopped (SIGINT)."""
        return subprocess.Popen(
            [
                "parec",
                f"--device={device}",
                "--latency-msec=20",
                f"--rate={rate}",
                "--channels=1",
                "--format=s16le",
                "--file-format=wav",
                str(out),
            ],
            env=self.env,
            start_new_session=True,
        )

    def stop(self) -> None:
        """Stop the daemon we started."""
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)

        def gone() -> bool:
            try:
                os.kill(self.pid or 0, 0)
            except ProcessLookupError:
                return True
            return False

        try:
            wait_until(gone, timeout=10, what="pulseaudio to exit")
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self.pid = None


class Mouth:
    """One playback stream into `device`, connected until `close` and fed silence between
    the programmes `say` plays: a talker whose microphone is on for the whole call.

    paplay opens a new stream per programme, and a stream joining a sink makes PulseAudio
    reconfigure that sink's latency and, through the remap modules, the latency of the
    streams on it. Measured in bench_phone_latency.py, whose mouth and ear share one sink:
    B's playback stream stood about 30 ms higher for the 1.5 s after paplay joined, until
    the engine's speaker ring trimmed it out of a pause, so the programme's first bursts
    heard that and its later ones did not. A person starting to speak changes nothing in
    the sound server; this mouth does not either.

    The pipe to pacat is shrunk to one page, so what is queued stays within about 0.1 s of
    what is heard (pacat writes only as fast as the server asks).
    """

    CHUNK_MS = 10

    def __init__(self, pulse: Pulse, device: str, rate: int, channels: int) -> None:
        self.frame = 2 * channels
        self.silence = bytes(self.frame * rate * self.CHUNK_MS // 1000)
        self.proc = subprocess.Popen(
            [
                "pacat",
                "--playback",
                "--stream-name=mouth",
                f"--device={device}",
                "--latency-msec=20",
                f"--rate={rate}",
                f"--channels={channels}",
                "--format=s16le",
                "--raw",
            ],
            env=pulse.env,
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.proc.stdin is not None
        self._fd = self.proc.stdin.fileno()
        fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, 4096)
        self._said: queue.Queue[tuple[bytes, threading.Event]] = queue.Queue()
        self._stop = threading.Event()
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._feed, name="mouth", daemon=True)
        self._thread.start()
        wait_until(
            lambda: (
                'media.name = "mouth"' in pulse.pactl("list", "sink-inputs")
                or self.proc.poll() is not None
            ),
            what="the mouth's stream",
        )
        if self.proc.poll() is not None:
            raise RuntimeError(f"pacat into {device} exited with {self.proc.returncode}")

    def say(self, pcm: bytes, timeout: float) -> None:
        """Play `pcm` (s16le, the stream's rate and channels) and return once it is all in
        the pipe (heard within about 0.1 s after that).

        Raises:
            RuntimeError: pacat went away before it took it all.
            TimeoutError: it took longer than `timeout` seconds.
        """
        done = threading.Event()
        self._said.put((pcm[: len(pcm) // self.frame * self.frame], done))
        wait_until(
            lambda: done.is_set() or self.error is not None,
            timeout=timeout,
            what="the mouth to say its programme",
        )
        if not done.is_set():
            raise RuntimeError(
                f"the mouth's pacat stopped taking audio ({self.error}; exit status "
                f"{self.proc.poll()})"
            )

    def _feed(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    pcm, done = self._said.get_nowait()
                except queue.Empty:
                    os.write(self._fd, self.silence)
                    continue
                view = memoryview(pcm)
                while view and not self._stop.is_set():
                    view = view[os.write(self._fd, view) :]
                done.set()
        except OSError as e:  # pacat went away: `say` raises it; after `close`, expected
            self.error = e

    def close(self) -> None:
        """Stop feeding and disconnect the stream."""
        self._stop.set()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self._thread.join(timeout=10)
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


def stop_recorder(proc: subprocess.Popen[bytes]) -> None:
    """Stop parec/paplay cleanly (SIGINT makes parec finish the WAV header)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
