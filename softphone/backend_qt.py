"""QtMultimedia as the headset: real device ids and names on every OS, hot-plug signals.

All Qt objects live on one dedicated Python thread running a QtCore event loop (never a GUI
thread: with Qt audio pumped on a busy GUI thread PESQ fell from 4 to 1.3). The engine thread
asks for things through a queue and gets answers through futures (softphone.backend_thread;
a queued signal wakes the Qt thread for each).

No Python runs on that thread per frame. Qt 6.11 puts a lock-free buffer between each
stream and PulseAudio's thread; the conference bridge's clock, which wakes every 20 ms
anyway, reads the source's buffer (pull mode) into the mic ring before it takes a frame,
and drains the speaker ring into the sink's buffer (push mode) after it gave one
(softphone.clocktap). The 5 ms QTimer pump and the `readyRead` slot that did this before
cost 3.3-3.9% of a core in wake-ups. The sink's buffer (`SINK_MS`) bounds how far ahead
playback is written; what does not fit waits in the speaker ring, whose standing-queue trim
keeps latency from growing. Only the ringer, whose latency does not matter, is still pumped
by a timer, and only while it rings.

PulseAudio is asked for 10 ms buffers (`PULSE_LATENCY_MSEC`, unless the user set it): Qt
passes only `tlength` for sinks and nothing for sources, and the server's defaults were
the largest single share of the mouth-to-ear delay.

This is the only engine module allowed to import Qt, and only QtCore/QtMultimedia.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

os.environ.setdefault("PULSE_LATENCY_MSEC", "10")  # read when Qt opens its first stream

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QTimer, Signal
from PySide6.QtMultimedia import (
    QAudioDevice,
    QAudioFormat,
    QAudioSink,
    QAudioSource,
    QMediaDevices,
)

from softphone.backend import AudioError, Device, ring_pattern
from softphone.backend_thread import DeviceThreadBackend
from softphone.clocktap import ClockTaps
from softphone.ringbuffer import RingBuffer

log = logging.getLogger(__name__)

Listener = Callable[[str, dict[str, Any]], None]


def _dev_id(dev: QAudioDevice) -> str:
    return bytes(dev.id().data()).decode("utf-8", "replace")


def _find(devices: list[QAudioDevice], wanted: str | None, default: QAudioDevice) -> QAudioDevice:
    """The device whose id or name is `wanted`; the default when not found or not given."""
    if wanted:
        for dev in devices:
            if _dev_id(dev) == wanted or dev.description() == wanted:
                return dev
        log.warning(
            "audio device %r not found; using the default %r", wanted, default.description()
        )
    return default


def _input(wanted: str | None) -> QAudioDevice:
    return _find(QMediaDevices.audioInputs(), wanted, QMediaDevices.defaultAudioInput())


def _output(wanted: str | None) -> QAudioDevice:
    return _find(QMediaDevices.audioOutputs(), wanted, QMediaDevices.defaultAudioOutput())


class _Waker(QObject):
    """Made on the Qt audio thread: `wake`, emitted from the engine thread, is delivered on
    the Qt thread (a queued connection), so requests are served at once without polling."""

    wake = Signal()


class QtBackend(DeviceThreadBackend):
    """Headset through QtMultimedia, on its own thread.

    Args:
        listener: called (from the Qt audio thread) with ("devices", {...}) on hot-plug and
            ("error", {...}) when a stream fails; the engine posts these to the UI.
    """

    name = "qt"
    # Capture arrives in ~10 ms pieces: start once 30 ms are queued (one 20 ms frame + the
    # pieces' jitter) and keep at most 10 ms standing. Playback drains the ring into the sink
    # on every tick, so what stays in the ring longer than 5 ms is standing.
    mic_ring_ms = (30, 10)
    speaker_ring_ms = (20, 5)
    #: The sink's buffer: the one jitter buffer between the bridge's 20 ms ticks and the
    #: device, filled a whole frame at a time, so it must take one frame on top of what the
    #: device has not played yet. Never under 640 bytes (Qt 6.11's PulseAudio sink starved on
    #: 320 at 16 kHz), so 8 kHz gets 40 ms.
    SINK_MS = 30
    SINK_MIN_BYTES = 640
    #: The source's buffer: drained whole on every tick, so its size adds no latency; it
    #: only has to outlast a late tick.
    SOURCE_MS = 100
    RINGER_PUMP_MS = 40  # the ringer's sink holds 200 ms
    #: While a call's streams are open the thread turns Qt's loop this often instead of
    #: sleeping in it (see _poll).
    POLL_MS = 20

    def __init__(
        self, clock_rate: int, frame_ms: int = 20, listener: Listener | None = None
    ) -> None:
        super().__init__(clock_rate, frame_ms)
        if listener is not None:
            self.listener = listener
        self._capture_name: str | None = None
        self._playback_name: str | None = None
        self._ringer_name: str | None = None
        self._source: QAudioSource | None = None
        self._sink: QAudioSink | None = None
        self._mic_ring: RingBuffer | None = None
        self._spk_ring: RingBuffer | None = None
        self._taps = ClockTaps(self.frame_bytes * 5)
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

    # Engine-thread API (the rest is DeviceThreadBackend's) -------------------------------
    def _wake(self) -> None:
        if self._waker is not None:
            self._waker.wake.emit()

    @property
    def capturing(self) -> bool:
        return self._capturing

    def clock_capture(self) -> None:
        self._taps.capture()

    def clock_playback(self) -> None:
        self._taps.playback()

    @property
    def ringing(self) -> bool:
        return self._ring_sink is not None

    def close(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._call(self._close_all)
            self._stop.set()
            self._wake()
            thread.join(timeout=5)

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
        timer.setInterval(self.RINGER_PUMP_MS)
        timer.timeout.connect(self._pump_ring)
        self._started.set()
        self._serve()  # anything asked before the waker existed
        while not self._stop.is_set():
            if self._streaming:
                self._poll()
            else:
                loop.exec()  # until _serve opened streams or was told to stop
        timer.stop()
        self._close_all()
        # Qt objects die on the thread that made them
        self._media = None
        self._pump_timer = None
        self._loop = None

    @property
    def _streaming(self) -> bool:
        return self._source is not None or self._sink is not None

    def _poll(self) -> None:
        """While a call's streams are open: Qt's pending events, then the engine's requests
        (waiting up to POLL_MS for one, so a request is still answered at once).

        Qt's streams signal this thread on every PulseAudio callback (800-1,000 eventfd
        wake-ups a second with 10 ms buffers), though no audio moves here (the media clock
        moves it). Asleep in exec(), it woke for each; turned every 20 ms, it takes them in
        one batch (about 0.3-0.5% of a core less, measured per thread).
        """
        assert self._loop is not None
        self._loop.processEvents()
        self._answer_within(self.POLL_MS / 1000)
        self._after_requests()

    def _serve(self) -> None:
        """Answer the engine thread's requests; then pump only while the ringer rings, and
        leave the event loop for _poll while streams are open."""
        self._answer_all()
        self._after_requests()

    def _after_requests(self) -> None:
        timer = self._pump_timer
        if timer is not None:
            playing = self._ring_sink is not None
            if playing and not timer.isActive():
                timer.start()
            elif not playing and timer.isActive():
                timer.stop()
        if (self._stop.is_set() or self._streaming) and self._loop is not None:
            self._loop.quit()  # a no-op while _poll runs: exec() clears it on entry

    def _format(self) -> QAudioFormat:
        fmt = QAudioFormat()
        fmt.setSampleRate(self.clock_rate)
        fmt.setChannelCount(1)
        fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        return fmt

    def _open_capture(self, ring: RingBuffer) -> None:
        self._close_capture()
        dev = _input(self._capture_name)
        if dev.isNull():
            raise AudioError("no microphone found")
        fmt = self._format()
        if not dev.isFormatSupported(fmt):
            raise AudioError(f"{dev.description()} cannot record {self.clock_rate} Hz mono")
        self._mic_ring = ring
        self._source = QAudioSource(dev, fmt)
        self._source.setBufferSize(self.SOURCE_MS * self.frame_bytes // self.frame_ms)
        source_io = self._source.start()  # pull mode: the clock reads it (clock_capture)
        err = self._source.error()
        if source_io is None or err != type(err).NoError:  # QAudio vs QtAudio enums
            raise AudioError(f"cannot open the microphone {dev.description()}")
        self._taps.attach_capture(source_io, ring)
        self._capturing = True
        log.info("capture from %s", dev.description())

    def _close_capture(self) -> None:
        self._taps.attach_capture(None, None)  # before stop(): the clock is done with it
        if self._source is not None:
            self._source.stop()  # dropped here, on the Qt thread, not by a later GC elsewhere
            log.info("capture closed")
        self._source = None
        self._mic_ring = None
        self._capturing = False

    def _open_playback(self, ring: RingBuffer) -> None:
        self._close_playback()
        dev = _output(self._playback_name)
        if dev.isNull():
            raise AudioError("no speaker or headset found")
        self._spk_ring = ring
        self._sink = QAudioSink(dev, self._format())
        size = max(self.SINK_MS * self.frame_bytes // self.frame_ms, self.SINK_MIN_BYTES)
        self._sink.setBufferSize(size)
        sink_io = self._sink.start()  # push mode: the clock writes it (clock_playback)
        if sink_io is None:
            raise AudioError(f"cannot open the speaker {dev.description()}")
        self._taps.attach_playback(sink_io, ring)
        log.info("playback into %s", dev.description())

    def _close_playback(self) -> None:
        self._taps.attach_playback(None, None)  # before stop(): the clock is done with it
        if self._sink is not None:
            self._sink.stop()
        self._sink = None
        self._spk_ring = None

    def _start_ringing(self) -> None:
        if self._ring_sink is not None:
            return
        dev = _output(self._ringer_name)
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
                Device(_dev_id(d), d.description(), d == din) for d in QMediaDevices.audioInputs()
            ],
            "playback": [
                Device(_dev_id(d), d.description(), d == dout) for d in QMediaDevices.audioOutputs()
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
            "capture": _input(self._capture_name).description(),
            "playback": _output(self._playback_name).description(),
            "ringer": _output(self._ringer_name).description(),
        }

    def _devices_changed(self) -> None:
        """Hot-plug: tell the UI; move open streams back to the chosen device when it is
        present again, or to the default while it is gone (and say so)."""
        devs = self._devices()
        if self.listener is not None:
            self.listener("devices", {k: [d.to_dict() for d in v] for k, v in devs.items()})
        for kind, wanted in (("capture", self._capture_name), ("playback", self._playback_name)):
            names = {d.name for d in devs[kind]} | {d.id for d in devs[kind]}
            if wanted and wanted not in names and self.listener is not None:
                self.listener(
                    "error",
                    {
                        "code": "audio_error",
                        "message": f"{wanted} is no longer connected; using the system default "
                        f"{kind} device until it comes back",
                    },
                )
        if self._mic_ring is not None:
            self._open_capture(self._mic_ring)
        if self._spk_ring is not None:
            self._open_playback(self._spk_ring)
