"""QtMultimedia as the headset: real device ids and names on every OS, hot-plug signals.

All Qt objects live on one dedicated Python thread running a QtCore event loop (never a GUI
thread: with Qt audio pumped on a busy GUI thread PESQ fell from 4 to 1.3). The engine thread
asks for things through a queue and gets answers through futures (a queued signal wakes the
Qt thread for each); a 5 ms QTimer pumps the speaker and the ringer, and runs only while one
of them is open, so an idle engine (most of a shift) does not wake 200 times a second.
Capture uses pull mode (`readyRead` -> mic ring); playback uses push mode: each pump moves
whatever the speaker ring holds into a 20 ms sink, so the sink is the one jitter buffer on
the way out and the ring stays nearly empty (measured stage by stage in
docs/architecture.md, "Phone audio latency").

PulseAudio is asked for 10 ms buffers (`PULSE_LATENCY_MSEC`, unless the user set it): Qt
passes only `tlength` for sinks and nothing for sources, and the server's defaults were
the largest single share of the mouth-to-ear delay.

This is the only engine module allowed to import Qt, and only QtCore/QtMultimedia.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QTimer, Signal
from PySide6.QtMultimedia import (
    QAudioDevice,
    QAudioFormat,
    QAudioSink,
    QAudioSource,
    QMediaDevices,
)

from softphone.backend import AudioBackend, AudioError, Device, Ring, ring_pattern

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]


def device_id(dev: QAudioDevice) -> str:
    """The id to remember a device by (PulseAudio's device name on Linux)."""
    return bytes(dev.id().data()).decode("utf-8", "replace")


def _find(devices: list[QAudioDevice], wanted: str | None, default: QAudioDevice) -> QAudioDevice:
    """The device whose id or name is `wanted`; the default when not found or not given."""
    if wanted:
        for dev in devices:
            if device_id(dev) == wanted or dev.description() == wanted:
                return dev
        log.warning(
            "audio device %r not found; using the default %r", wanted, default.description()
        )
    return default


class _Waker(QObject):
    """Made on the Qt audio thread: `wake`, emitted from the engine thread, is delivered on
    the Qt thread (a queued connection), so requests are served at once without polling."""

    wake = Signal()


class QtBackend(AudioBackend):
    """Headset through QtMultimedia, on its own thread.

    Args:
        listener: called (from the Qt audio thread) with ("devices", {...}) on hot-plug and
            ("error", {...}) when a stream fails; the engine posts these to the UI.
    """

    name = "qt"
    # Capture arrives in ~5 ms pieces: start once 25 ms are queued (one 20 ms frame + 5 ms of
    # arrival jitter) and keep at most 5 ms standing. Playback drains the ring into the sink
    # (see _pump_playback), so what stays in the ring longer than 5 ms is standing.
    mic_ring_ms = (30, 10)
    speaker_ring_ms = (20, 5)
    #: The sink's buffer: the only jitter buffer between the bridge's 20 ms ticks and the
    #: device. Below 640 bytes Qt 6.11's PulseAudio sink starved (at 16 kHz, 320 bytes: it
    #: took data more slowly than it came), so 8 kHz gets 40 ms.
    SINK_MS = 20
    SINK_MIN_BYTES = 640
    #: libpulse applies PULSE_LATENCY_MSEC to every stream of the process, overriding the
    #: buffer sizes a stream asks for: right for Qt's streams (Qt asks for nothing useful),
    #: wrong for a backend that sizes its own (PulseBackend's tlength became 7.5 ms).
    PULSE_LATENCY_MSEC: str | None = "10"

    def __init__(
        self, clock_rate: int, frame_ms: int = 20, listener: Listener | None = None
    ) -> None:
        super().__init__(clock_rate, frame_ms)
        if self.PULSE_LATENCY_MSEC is not None:  # read when Qt opens its first stream
            os.environ.setdefault("PULSE_LATENCY_MSEC", self.PULSE_LATENCY_MSEC)
        if listener is not None:
            self.listener = listener
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._capture_name: str | None = None
        self._playback_name: str | None = None
        self._ringer_name: str | None = None
        self._source: QAudioSource | None = None
        self._source_io: Any = None
        self._sink: QAudioSink | None = None
        self._sink_io: Any = None
        self._mic_ring: Ring | None = None
        self._spk_ring: Ring | None = None
        self._pump_buf = (ctypes.c_char * (self.frame_bytes * 10))()
        self._pump_addr = ctypes.addressof(self._pump_buf)
        self._capturing = False
        self._ring_sink: QAudioSink | None = None
        self._ring_io: Any = None
        self._ring_pos = 0
        self._ring_pcm = ring_pattern(clock_rate)
        self._media: QMediaDevices | None = None
        self._app: QCoreApplication | None = None
        self._loop: QEventLoop | None = None
        self._waker: _Waker | None = None
        self._pump_timer: QTimer | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qt-audio", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout=10):
            raise AudioError("the Qt audio thread did not start")

    # Engine-thread API ----------------------------------------------------------------
    def _call(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        return self._post(fn).result(timeout=timeout)

    def _post(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run `fn` on the Qt audio thread soon; its result or error lands in the future."""
        fut: Future[Any] = Future()
        self._requests.put((fn, fut))
        self._wake()
        return fut

    def _wake(self) -> None:
        if self._waker is not None:
            self._waker.wake.emit()

    def open_capture(self, ring: Ring) -> None:
        self._call(lambda: self._open_capture(ring))

    def close_capture(self) -> None:
        if self._thread.is_alive():
            self._call(self._close_capture)

    def open_playback(self, ring: Ring) -> None:
        self._call(lambda: self._open_playback(ring))

    def close_playback(self) -> None:
        if self._thread.is_alive():
            self._call(self._close_playback)

    @property
    def capturing(self) -> bool:
        return self._capturing

    def devices(self) -> dict[str, list[Device]]:
        result: dict[str, list[Device]] = self._call(self._devices)
        return result

    def select(
        self, capture: str | None, playback: str | None, ringer: str | None
    ) -> dict[str, str]:
        result: dict[str, str] = self._call(lambda: self._select(capture, playback, ringer))
        return result

    def start_ringing(self) -> None:
        self._call(self._start_ringing)

    def stop_ringing(self) -> None:
        if self._thread.is_alive():
            self._call(self._stop_ringing)

    @property
    def ringing(self) -> bool:
        return self._ring_sink is not None

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._close_all)
            self._stop.set()
            self._wake()
            self._thread.join(timeout=5)

    # Qt audio thread --------------------------------------------------------------------
    def _run(self) -> None:
        self._app = QCoreApplication.instance() or QCoreApplication(["switchboard-phone"])
        loop = QEventLoop()
        self._media = QMediaDevices()
        self._media.audioInputsChanged.connect(self._devices_changed)
        self._media.audioOutputsChanged.connect(self._devices_changed)
        self._loop = loop
        self._waker = _Waker()
        self._waker.wake.connect(self._serve, Qt.ConnectionType.QueuedConnection)
        timer = self._pump_timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(5)
        timer.timeout.connect(self._pump)
        self._started.set()
        self._serve()  # anything asked before the waker existed
        loop.exec()
        timer.stop()
        self._close_all()
        # Qt objects die on the thread that made them
        self._media = None
        self._pump_timer = None
        self._loop = None

    def _serve(self) -> None:
        """Answer the engine thread's requests; then pump only if something plays."""
        while True:
            try:
                fn, fut = self._requests.get_nowait()
            except queue.Empty:
                break
            try:
                fut.set_result(fn())
            except Exception as exc:
                fut.set_exception(exc)
        timer = self._pump_timer
        if timer is not None:
            playing = self._sink is not None or self._ring_sink is not None
            if playing and not timer.isActive():
                timer.start()
            elif not playing and timer.isActive():
                timer.stop()
        if self._stop.is_set() and self._loop is not None:
            self._loop.quit()

    def _pump(self) -> None:
        self._pump_playback()
        self._pump_ring()

    def _format(self) -> QAudioFormat:
        fmt = QAudioFormat()
        fmt.setSampleRate(self.clock_rate)
        fmt.setChannelCount(1)
        fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        return fmt

    def _open_capture(self, ring: Ring) -> None:
        self._close_capture()
        dev = self._device("capture")
        if dev.isNull():
            raise AudioError("no microphone found")
        fmt = self._format()
        if not dev.isFormatSupported(fmt):
            raise AudioError(f"{dev.description()} cannot record {self.clock_rate} Hz mono")
        self._mic_ring = ring
        self._source = QAudioSource(dev, fmt)
        self._source.setBufferSize(self.frame_bytes * 2)
        self._source_io = self._source.start()
        err = self._source.error()
        if self._source_io is None or err != type(err).NoError:  # QAudio vs QtAudio enums
            raise AudioError(f"cannot open the microphone {dev.description()}")
        self._source_io.readyRead.connect(self._read_mic)
        self._capturing = True
        log.info("capture from %s", dev.description())

    def _read_mic(self) -> None:
        if self._source_io is None or self._mic_ring is None:
            return
        data = self._source_io.readAll()
        if data.size():
            self._mic_ring.write(bytes(data.data()))

    def _close_capture(self) -> None:
        if self._source is not None:
            self._source.stop()  # dropped here, on the Qt thread, not by a later GC elsewhere
            log.info("capture closed")
        self._source = None
        self._source_io = None
        self._mic_ring = None
        self._capturing = False

    def _open_playback(self, ring: Ring) -> None:
        self._close_playback()
        dev = self._device("playback")
        if dev.isNull():
            raise AudioError("no speaker or headset found")
        self._spk_ring = ring
        self._sink = QAudioSink(dev, self._format())
        size = max(self.SINK_MS * self.frame_bytes // self.frame_ms, self.SINK_MIN_BYTES)
        self._sink.setBufferSize(size)
        self._sink_io = self._sink.start()
        if self._sink_io is None:
            raise AudioError(f"cannot open the speaker {dev.description()}")
        log.info("playback into %s", dev.description())

    def _pump_playback(self) -> None:
        if self._sink is None or self._sink_io is None or self._spk_ring is None:
            return
        free = min(self._sink.bytesFree(), len(self._pump_buf))
        n = self._spk_ring.drain_into(self._pump_addr, free) if free > 0 else 0
        if n:
            self._sink_io.write(self._pump_buf.raw[:n])

    def _close_playback(self) -> None:
        if self._sink is not None:
            self._sink.stop()
        self._sink = None
        self._sink_io = None
        self._spk_ring = None

    def _start_ringing(self) -> None:
        if self._ring_sink is not None:
            return
        dev = self._device("ringer")
        if dev.isNull():
            raise AudioError("no speaker to ring on")
        self._ring_sink = QAudioSink(dev, self._format())
        self._ring_sink.setBufferSize(self.frame_bytes * 10)
        self._ring_io = self._ring_sink.start()
        self._ring_pos = 0
        log.info("ringing on %s", dev.description())

    def _pump_ring(self) -> None:
        if self._ring_sink is None or self._ring_io is None:
            return
        n = self.frame_bytes
        pcm = self._ring_pcm
        while self._ring_sink.bytesFree() >= n:
            chunk = pcm[self._ring_pos : self._ring_pos + n]
            if len(chunk) < n:
                chunk += pcm[: n - len(chunk)]
            self._ring_pos = (self._ring_pos + n) % len(pcm)
            self._ring_io.write(chunk)

    def _stop_ringing(self) -> None:
        if self._ring_sink is not None:
            self._ring_sink.stop()
            log.info("ringing stopped")
        self._ring_sink = None
        self._ring_io = None

    def _close_all(self) -> None:
        self._close_capture()
        self._close_playback()
        self._stop_ringing()

    def _devices(self) -> dict[str, list[Device]]:
        din, dout = QMediaDevices.defaultAudioInput(), QMediaDevices.defaultAudioOutput()
        return {
            "capture": [
                Device(device_id(d), d.description(), d == din) for d in QMediaDevices.audioInputs()
            ],
            "playback": [
                Device(device_id(d), d.description(), d == dout)
                for d in QMediaDevices.audioOutputs()
            ],
        }

    def _select(
        self, capture: str | None, playback: str | None, ringer: str | None
    ) -> dict[str, str]:
        if capture is not None:
            self._capture_name = capture or None
            if self._mic_ring is not None:
                self._open_capture(self._mic_ring)
        if playback is not None:
            self._playback_name = playback or None
            if self._spk_ring is not None:
                self._open_playback(self._spk_ring)
        if ringer is not None:
            self._ringer_name = ringer or None
        return {
            kind: self._device(kind).description() for kind in ("capture", "playback", "ringer")
        }

    def _device(self, kind: str, fallback: bool = True) -> QAudioDevice:
        """The chosen device of `kind` ("capture", "playback" or "ringer") as present now; when
        none was chosen or it is gone, the system default (or a null device if not
        `fallback`)."""
        if kind == "capture":
            devices, wanted = QMediaDevices.audioInputs(), self._capture_name
            default = QMediaDevices.defaultAudioInput()
        else:
            devices = QMediaDevices.audioOutputs()
            wanted = self._playback_name if kind == "playback" else self._ringer_name
            default = QMediaDevices.defaultAudioOutput()
        return _find(devices, wanted, default if fallback else QAudioDevice())

    def _devices_changed(self) -> None:
        """Hot-plug: tell the UI; move open streams back to the chosen device when it is
        present again, or to the default while it is gone (and say so)."""
        devs = self._devices()
        if self.listener is not None:
            self.listener("devices", {k: [d.to_dict() for d in v] for k, v in devs.items()})
        for kind, wanted in (("capture", self._capture_name), ("playback", self._playback_name)):
            names = {d.name for d in devs[kind]} | {d.id for d in devs[kind]}
            if wanted and wanted not in names:
                self._tell_error(
                    f"{wanted} is no longer connected; using the system default "
                    f"{kind} device until it comes back"
                )
        if self._mic_ring is not None:
            self._try_open(self._mic_ring, self._open_capture)
        if self._spk_ring is not None:
            self._try_open(self._spk_ring, self._open_playback)

    def _try_open(self, ring: Ring, open_stream: Callable[[Ring], None]) -> None:
        """Open a stream where a failure has no caller to reach (a Qt slot, a posted
        request): the agent is told instead of Qt printing a traceback."""
        try:
            open_stream(ring)
        except AudioError as exc:
            log.warning("%s", exc)
            self._tell_error(str(exc))

    def _tell_error(self, message: str) -> None:
        """An `error` event for the agent (the engine posts it to the UI)."""
        if self.listener is not None:
            self.listener("error", {"code": "audio_error", "message": message})
