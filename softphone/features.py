"""Call features beyond the basics: DTMF, transfers, conference, recording.

Mixed into `Engine` next to `CommandHandlers`; like them, every method runs on the engine
thread and raises `EngineError` with words for the agent.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

from softphone import numbers
from softphone.errors import EngineError

if TYPE_CHECKING:
    from collections.abc import Callable

    from softphone.account import SoftAccount
    from softphone.bridge import AudioBridge
    from softphone.calls import SoftCall

log = logging.getLogger(__name__)


class FeatureHandlers:
    """`cmd_dtmf`, `cmd_transfer`, `cmd_conference`, `cmd_record_*`."""

    if TYPE_CHECKING:
        accounts: dict[str, SoftAccount]
        calls: dict[str, SoftCall]
        bridge: AudioBridge | None

        def call_pj(self, fn: Callable[..., Any], *args: Any, what: str = "") -> Any: ...
        def _call(self, key: str) -> SoftCall: ...

    def cmd_dtmf(self, call: str, digits: str, method: str = "rfc4733") -> dict[str, Any]:
        """Send digits in RTP (RFC 4733) or as SIP INFO (for PBXs that want it)."""
        c = self._call(call)
        if not digits or any(d not in "0123456789*#ABCDabcd" for d in digits):
            raise EngineError("bad_args", "DTMF digits are 0-9, *, # and A-D")
        if method == "info":
            # PJSIP would send one INFO per digit at once; a proxy with several worker
            # processes reorders them and the far end refuses the lower CSeq (500), losing a
            # digit. So: one INFO at a time, the next when the previous one is answered.
            c.info_digits += digits
            if not c.info_in_flight:
                self._send_next_info_digit(c)
        elif method == "rfc4733":
            prm = pj.CallSendDtmfParam()
            prm.digits = digits
            prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
            self.call_pj(c.sendDtmf, prm, what="sending DTMF")
        else:
            raise EngineError("bad_args", "method must be rfc4733 or info")
        log.info("sending %d DTMF digit(s) on %s by %s", len(digits), call, method)
        return {"call": call, "digits": digits}

    def cmd_transfer(self, call: str, to: str = "", replaces: str = "") -> dict[str, Any]:
        """Blind transfer (REFER to `to`) or attended transfer (REFER with Replaces, `replaces`
        being our other call to the target); `transfer_state` reports the far end's progress.
        """
        c = self._call(call)
        if replaces:
            other = self._call(replaces)
            self.call_pj(
                c.xferReplaces, other, pj.CallOpParam(True), what="transferring (attended)"
            )
            return {"call": call, "replaces": replaces}
        if not to:
            raise EngineError("bad_args", "transfer needs 'to' (blind) or 'replaces' (attended)")
        acc = self.accounts.get(c.account_name)
        domain = acc.settings.domain if acc else ""
        try:
            uri = numbers.to_sip_uri(str(to), domain)
        except numbers.NumberError as exc:
            raise EngineError("bad_args", str(exc)) from exc
        self.call_pj(c.xfer, uri, pj.CallOpParam(True), what=f"transferring to {uri}")
        return {"call": call, "to": uri}

    def cmd_conference(self, calls: list[str]) -> dict[str, Any]:
        """Bridge the audio of these calls with each other (and, as always, with the agent):
        a local three-way conference. Hold or hang up a leg to leave it."""
        legs = [self._call(k) for k in calls]
        if len(legs) < 2:
            raise EngineError("bad_args", "a conference needs at least two calls")
        media = []
        for leg in legs:
            if not leg.connected_slots:
                raise EngineError("invalid_state", f"{leg.key} has no audio (on hold?)")
            media.append(leg.getAudioMedia(next(iter(leg.connected_slots))))
        for i, a in enumerate(legs):
            for j, b in enumerate(legs):
                if i != j and b.key not in a.conferenced:
                    self.call_pj(media[i].startTransmit, media[j], what="joining the calls")
                    a.conferenced.add(b.key)
        return {"calls": [leg.key for leg in legs]}

    def cmd_record_start(self, call: str, path: str) -> dict[str, Any]:
        """Record both sides of a call (the far end and the agent's microphone) to a WAV."""
        c = self._call(call)
        if c.recorder is not None:
            raise EngineError("invalid_state", f"{call} is already being recorded")
        if not c.connected_slots or self.bridge is None or self.bridge.port is None:
            raise EngineError("invalid_state", f"{call} has no audio to record yet")
        rec = pj.AudioMediaRecorder()
        self.call_pj(rec.createRecorder, str(path), what=f"creating the recording {path}")
        far = c.getAudioMedia(next(iter(c.connected_slots)))
        self.call_pj(far.startTransmit, rec, what="recording")
        self.call_pj(self.bridge.port.startTransmit, rec, what="recording")
        c.recorder, c.recording_path = rec, str(path)
        return {"call": call, "path": str(path)}

    def cmd_record_stop(self, call: str) -> dict[str, Any]:
        """Stop recording; the WAV file is complete when the reply arrives."""
        c = self._call(call)
        if c.recorder is None:
            raise EngineError("invalid_state", f"{call} is not being recorded")
        path = c.recording_path
        finish_recording(self, c)
        return {"call": call, "path": path}

    def _send_next_info_digit(self, c: SoftCall) -> None:
        if not c.info_digits:
            c.info_in_flight = False
            return
        digit, c.info_digits = c.info_digits[0], c.info_digits[1:]
        prm = pj.CallSendDtmfParam()
        prm.digits = digit
        prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
        c.info_in_flight = True
        self.call_pj(c.sendDtmf, prm, what="sending DTMF by SIP INFO")


def _wav_complete(path: str) -> bool:
    """True once the WAV writer has filled in the RIFF and data sizes (done on close)."""
    try:
        with open(path, "rb") as f:
            head = f.read(44)
    except OSError:
        return False
    return len(head) == 44 and int.from_bytes(head[4:8], "little") > 36


def finish_recording(engine: Any, c: SoftCall, timeout: float = 2.0) -> None:
    """Stop feeding the recorder, destroy it, and wait until its file is complete.

    In PJSIP 2.15 the conference removes ports asynchronously (on the media clock), so the
    WAV header is written a few ms after the recorder object is gone; a reply sent before
    that would hand the UI a file that `wave` cannot open yet.
    """
    rec, path = c.recorder, c.recording_path
    if rec is None:
        return
    if engine.bridge is not None and engine.bridge.port is not None:
        for med_idx in c.connected_slots:
            c.getAudioMedia(med_idx).stopTransmit(rec)
        engine.bridge.port.stopTransmit(rec)
    c.recorder, c.recording_path = None, ""
    del rec  # the recorder's destructor queues the port's removal, which closes the file
    end = time.monotonic() + timeout
    while not _wav_complete(path) and time.monotonic() < end:
        engine.ep.libHandleEvents(5)
    if not _wav_complete(path):
        log.warning("the recording %s was not finalised within %.1f s", path, timeout)
