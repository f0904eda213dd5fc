"""The audio bridge: a pjsua2 conference port that trades 20 ms frames with a device layer.

pjsua2-python's wheels have no sound device, so the engine runs pjsua2 on its null device
(which keeps the conference bridge clocked) and plugs this port into the bridge. Calls are
connected to it both ways. The port's two callbacks arrive on the media clock's thread: they
touch only the ring buffers, with memmove straight between the SWIG vector and the ring
(softphone.framecopy), and never call the pjsua2 API.

Everything else here (connect/disconnect, create/destroy) runs on the engine thread.
"""

from __future__ import annotations

import ctypes
import logging
import os
from threading import get_ident
from typing import Any, TypeVar

import pjsua2 as pj

from softphone import framecopy, native
from softphone.backend import AudioBackend, Ring
from softphone.native.port import NativeError, NativePort
from softphone.native.ring import NativeRing
from softphone.ringbuffer import RingBuffer

log = logging.getLogger(__name__)

R = TypeVar("R", RingBuffer, NativeRing)

_FAST = framecopy.probe(pj.ByteVector)


#: Native threads that call the port and keep a Python thread state (`_keep_thread_state`).
_KEPT: set[int] = set()


def _keep_thread_state() -> None:
    """Keep a Python thread state for the calling native thread (the media clock), once.

    SWIG's directors enter Python with PyGILState_Ensure and leave with PyGILState_Release;
    on a thread Python did not start, that creates and destroys a whole thread state on every
    callback, twice per 20 ms tick. One extra Ensure, never released, keeps it: later
    callbacks only take and give back the GIL. The state is freed with the interpreter.
    Called with the GIL held (from a callback), so the set needs no lock.
    """
    tid = get_ident()
    if tid not in _KEPT:
        ctypes.pythonapi.PyGILState_Ensure()
        _KEPT.add(tid)


class BridgePort(pj.AudioMediaPort):
    """The conference port: frames requested by the bridge come from the mic ring; frames it
    delivers go into the speaker ring."""

    def __init__(
        self, mic: RingBuffer, speaker: RingBuffer, frame_bytes: int, backend: AudioBackend
    ) -> None:
        super().__init__()
        self.mic = mic
        self.speaker = speaker
        self.frame_bytes = frame_bytes
        # A clocked backend's device I/O runs here, on the tick (AudioBackend.clocked).
        self._pull = backend.pull_capture if backend.clocked else None
        self._push = backend.push_playback if backend.clocked else None
        self._scratch = (ctypes.c_char * frame_bytes)()
        self._scratch_addr = ctypes.addressof(self._scratch)

    def onFrameRequested(self, frame: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Media clock thread: hand the bridge one frame of microphone audio."""
        _keep_thread_state()
        n = self.frame_bytes
        if self._pull is not None:
            self._pull()
        if _FAST:
            vec = frame.buf
            vec.resize(n)
            addr, size = framecopy.vector_span(vec)
            if size == n:
                self.mic.read_into(addr, n)
            else:  # never seen; keeps the frame well-formed if it happens
                ctypes.memset(addr, 0, size)
        else:
            self.mic.read_into(self._scratch_addr, n)
            frame.buf = pj.ByteVector(self._scratch.raw)
        frame.size = n
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO

    def onFrameReceived(self, frame: Any) -> None:  # noqa: N802 (pjsua2's name)
        """Media clock thread: take one frame of what the calls say, for the speaker."""
        if frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO:
            return
        if _FAST:
            addr, size = framecopy.vector_span(frame.buf)
            if size:
                self.speaker.write_from(addr, size)
        else:
            self.speaker.write(framecopy.copy_slow(frame.buf))
        if self._push is not None:
            self._push()


class AudioBridge:
    """Owns the port, its rings and the backend; connects calls' audio to the headset.

    Args:
        backend: the device layer.
        clock_rate: the conference bridge's rate (the port must match it).
    """

    def __init__(self, backend: AudioBackend, clock_rate: int, frame_ms: int = 20) -> None:
        self.backend = backend
        self.clock_rate = clock_rate
        self.frame_bytes = clock_rate * frame_ms // 1000 * 2
        self.port: Any = None  # the AudioMedia the calls connect to
        self._media_list: Any = None  # owns the native port's AudioMedia (see _open_native)
        self.mic: Ring
        self.speaker: Ring
        self.native: NativePort | None = self._open_native(backend, clock_rate, frame_ms)
        if self.native is None:
            self.mic, self.speaker = self._rings(RingBuffer, frame_ms)
            fmt = pj.MediaFormatAudio()
            fmt.init(pj.PJMEDIA_FORMAT_PCM, clock_rate, 1, frame_ms * 1000, 16)
            self.port = BridgePort(self.mic, self.speaker, self.frame_bytes, backend)
            self.port.createPort("switchboard-headset", fmt)
        self._tone: Any = None  # ToneGenerator, made on first use, kept (see set_tone)
        self._tone_kind: str | None = None
        self._talking: set[int] = set()  # conference slots sending to the port
        self._listening: set[int] = set()  # slots receiving the mic
        log.info(
            "audio bridge at %d Hz, %s",
            clock_rate,
            "native port" if self.native else f"Python port (fast frame copy: {_FAST})",
        )

    def _open_native(
        self, backend: AudioBackend, clock_rate: int, frame_ms: int
    ) -> NativePort | None:
        """The C port (softphone/native) when it is built and matches this pjmedia; else
        None, said in the log, and the Python port is used. SWITCHBOARD_NATIVE_AUDIO=0 turns
        it off (a comparison, or a workaround should the native path misbehave)."""
        if os.environ.get("SWITCHBOARD_NATIVE_AUDIO", "1") == "0":
            log.info("native audio path turned off (SWITCHBOARD_NATIVE_AUDIO=0)")
            return None
        if native.library() is None:
            log.warning(
                "native audio path unavailable (%s): using the Python port", native.unavailable()
            )
            return None
        mic, speaker = self._rings(NativeRing, frame_ms)
        try:
            port = NativePort(
                pj._pjsua2.__file__, mic, speaker, clock_rate, frame_ms, backend.native_fault
            )
        except NativeError as exc:
            log.warning("native audio path unavailable (%s): using the Python port", exc)
            return None
        # pjsua2 has no AudioMedia constructor for a slot; its port list has one. The
        # vector owns the object, so it is kept as long as the port.
        self._media_list = pj.Endpoint.instance().mediaEnumPorts2()
        media = next((m for m in self._media_list if m.getPortId() == port.slot), None)
        if media is None:
            port.close()
            self._media_list = None
            log.warning("the native port is not in the bridge's list: using the Python port")
            return None
        self.port = media
        self.mic, self.speaker = mic, speaker
        backend.attach_native(port)
        return port

    def _rings(self, cls: type[R], frame_ms: int) -> tuple[R, R]:
        """(mic, speaker) rings of `cls`, sized as the backend asks."""
        (mic_start, mic_target), (spk_start, spk_target) = (
            self.backend.mic_ring_ms,
            self.backend.speaker_ring_ms,
        )
        return (
            cls(self.frame_bytes, frame_ms, start_ms=mic_start, target_ms=mic_target),
            cls(self.frame_bytes, frame_ms, start_ms=spk_start, target_ms=spk_target),
        )

    @property
    def fast_copy(self) -> bool:
        """Whether frames move without a Python copy (the native port, or the layout-based
        frame copy of the Python port)."""
        return self.native is not None or _FAST

    def connect(self, media: Any, send_mic: bool = True) -> None:
        """Hear `media` (a call's AudioMedia) on the speaker and, unless muted, feed it the mic.

        Opens the backend streams the first time a call needs them.
        """
        assert self.port is not None
        slot = media.getPortId()
        log.debug("connect slot %d (send mic: %s)", slot, send_mic)
        if slot not in self._talking:
            media.startTransmit(self.port)
            self._talking.add(slot)
        if send_mic and slot not in self._listening:
            self.port.startTransmit(media)
            self._listening.add(slot)
        elif not send_mic and slot in self._listening:
            self.port.stopTransmit(media)
            self._listening.discard(slot)
        self._update_streams()

    def disconnect(self, media: Any | None, slot: int, update: bool = True) -> None:
        """Stop audio between the headset and a call (hold, hang-up); closes idle streams.

        `media` may be None when the call's media is already gone; the slot is then forgotten.
        """
        if media is not None and self.port is not None:
            if slot in self._talking:
                media.stopTransmit(self.port)
            if slot in self._listening:
                self.port.stopTransmit(media)
        self._talking.discard(slot)
        self._listening.discard(slot)
        if update:  # False when a connect() follows at once: no needless device close/open
            self._update_streams()

    #: Headset tones: (freq1, freq2, on ms, off ms). Ringback is the North American ring;
    #: call waiting a short 440 Hz beep, repeated, under the current conversation.
    TONES = {"ringback": (440, 480, 2000, 4000), "waiting": (440, 440, 300, 2700)}

    def set_tone(self, kind: str | None) -> None:
        """Play a headset tone (`TONES` key) or none.

        One generator lives as long as the bridge: destroying a conference port while the
        clock runs is asynchronous in PJSIP 2.15, and destroying one mid-call silenced the
        whole bridge.
        """
        if kind == self._tone_kind or self.port is None:
            return
        if self._tone_kind is not None:
            self._tone.stopTransmit(self.port)
            self._tone.stop()
            self._tone_kind = None
        if kind is not None:
            if self._tone is None:
                self._tone = pj.ToneGenerator()
                self._tone.createToneGenerator(self.clock_rate, 1)
            f1, f2, on, off = self.TONES[kind]
            desc = pj.ToneDesc()
            desc.freq1, desc.freq2, desc.on_msec, desc.off_msec = f1, f2, on, off
            tones = pj.ToneDescVector()
            tones.append(desc)
            self._tone.play(tones, True)
            self._tone.startTransmit(self.port)
            self._tone_kind = kind
        self._update_streams()

    @property
    def tone(self) -> str | None:
        """The headset tone playing now, if any."""
        return self._tone_kind

    @property
    def ringback(self) -> bool:
        """True while the ringback plays."""
        return self._tone_kind == "ringback"

    def _update_streams(self) -> None:
        want_mic = bool(self._listening)
        want_speaker = bool(self._talking) or self._tone_kind is not None
        if want_mic and not self.backend.capturing:
            self.mic.reset()
            self.backend.open_capture(self.mic)
        elif not want_mic and self.backend.capturing:
            self.backend.close_capture()
        if want_speaker and not self._speaker_open:
            self.speaker.reset()
            self.backend.open_playback(self.speaker)
            self._speaker_open = True
        elif not want_speaker and self._speaker_open:
            self.backend.close_playback()
            self._speaker_open = False

    _speaker_open = False

    def counters(self) -> dict[str, Any]:
        """Ring health for the quality event."""
        return {
            "mic": self.mic.counters(),
            "speaker": self.speaker.counters(),
            "device": self.backend.counters(),
        }

    def destroy(self) -> None:
        """Close the devices and drop the port (engine thread, before libDestroy)."""
        self.set_tone(None)
        self._tone = None  # the clock is stopped (setNoDev) before destroy() is called
        self._talking.clear()
        self._listening.clear()
        self.backend.close()
        self._speaker_open = False
        if self.native is not None:
            self.native.close()
            self._media_list = None
        self.port = None
