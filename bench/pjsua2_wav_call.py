"""bench_phone_call.py's baseline: pjsua2 alone, one call with its own WAV player and recorder.

    python bench/pjsua2_wav_call.py URI MIC.wav OUT.wav

What the issue calls "pjsua2's own cost for the same call": no engine, no RPC, no audio
bridge, no Python per frame. The media settings are the engine's (softphone/engine.py): a
16 kHz mono conference bridge, no VAD, no echo canceller, the null sound device, threadCnt=0
with the loop calling libHandleEvents(10 ms), so the difference to the engine is what the
engine adds. MIC.wav is played into the call (looped) and the call is recorded into OUT.wav
by pjmedia's own ports. Prints `CONFIRMED` when the call is up, hangs up when stdin closes,
prints `DONE <recorded bytes>` and exits (`FAILED <why>` first when the call ended on its own).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pjsua2 as pj

CLOCK_RATE = 16000  # softphone.engine.EngineOptions.clock_rate
LOOP_MS = 10  # softphone.engine.EngineOptions.loop_ms


class Call(pj.Call):
    """Connects the player and the recorder to the call's audio when media is active."""

    def __init__(self, acc: pj.Account, player: pj.AudioMediaPlayer, rec: pj.AudioMediaRecorder):
        super().__init__(acc)
        self.player = player
        self.rec = rec
        self.state = ""

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802
        self.state = self.getInfo().stateText
        if self.state == "CONFIRMED":
            print("CONFIRMED", flush=True)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        info = self.getInfo()  # kept: the media vector's items point into it
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                audio = self.getAudioMedia(media.index)
                self.player.startTransmit(audio)
                audio.startTransmit(self.rec)


def main() -> int:
    uri, mic, out = sys.argv[1], sys.argv[2], sys.argv[3]
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = False
    cfg.logConfig.level = 1
    cfg.logConfig.consoleLevel = 1
    cfg.medConfig.clockRate = CLOCK_RATE
    cfg.medConfig.sndClockRate = CLOCK_RATE
    cfg.medConfig.channelCount = 1
    cfg.medConfig.ecTailLen = 0
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = 0
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.libStart()
    ep.audDevManager().setNullDev()
    acc = pj.Account()
    acfg = pj.AccountConfig()
    acfg.idUri = "sip:baseline@127.0.0.1"
    acc.create(acfg)
    player = pj.AudioMediaPlayer()
    player.createPlayer(mic, 0)  # 0: loop
    rec = pj.AudioMediaRecorder()
    rec.createRecorder(out)
    call = Call(acc, player, rec)
    call.makeCall(uri, pj.CallOpParam(True))

    stop = threading.Event()

    def watch_stdin() -> None:
        # No pjsua2 call on this thread: it only notices that the parent closed stdin.
        while os.read(0, 4096):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.is_set() and call.state != "DISCONNCTD":
        ep.libHandleEvents(LOOP_MS)
    if call.state == "DISCONNCTD":
        print("FAILED the call ended before it was hung up", flush=True)
    if call.state != "DISCONNCTD":
        call.hangup(pj.CallOpParam(True))
        for _ in range(200):
            if call.state == "DISCONNCTD":
                break
            ep.libHandleEvents(LOOP_MS)
    # Destroy what holds pjmedia ports before the library (an object outliving libDestroy
    # aborts the process).
    del call
    del rec
    del player
    acc.shutdown()
    del acc
    ep.libDestroy()
    print(f"DONE {Path(out).stat().st_size}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
