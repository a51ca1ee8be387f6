#!/usr/bin/env python
"""Barge-in in a PulseAudio room, measured in the room's recordings.

    python benchmarks/barge_in.py                         # 10 cut-ins, 10 backchannels, 20 replies heard out
    python benchmarks/barge_in.py --cut_ins 3 --backchannels 3 --quiet_replies 3 -- --barge_in_min_ms 400
    python benchmarks/barge_in.py --socket                # the socket server; listen_and_play.py --full_duplex in the room

The room (tests/pulse_room.py, split): the assistant (`s2s_pipeline.py --mode local`, full duplex) plays into a
speaker sink looped into the room, so its microphone hears its own voice 20 ms later and more, as on a laptop;
the user's voice (espeak-ng) is played into the room. `speaker.monitor` records the assistant alone and
`room.monitor` what the microphone hears, so the moment the user starts (the mix minus the assistant) and the
moment the assistant's voice stops are both read off the recordings, to the sample.

The language model is a recording OpenAI-compatible server that always tells the same long story (flags after
-- go to the server): the replies are long, and the history it is sent shows what was kept of a cut reply.
The cut-ins and backchannels are played 1 s into a reply; a cut-in is a question ("What time is it in Tokyo?"),
a backchannel is "mm-hmm", "yeah", "okay", "right" or a cough (a burst of noise).
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.measures import percentile  # noqa: E402

logger = logging.getLogger("benchmarks.barge_in")

RATE = 16000
HOP = 160  # 10 ms
SOUND = 300  # |int16| at or above this is sound
STOP_SILENCE_S = 0.8  # the assistant's voice has stopped once this much silence follows (longer than its pauses)
STORY = [f"{s} " for s in (
    "Once upon a time a brave knight lived in a castle on a hill.", "Every morning he rode out to look after the village.",
    "One day he met a friendly dragon who had lost its way in the forest.", "The dragon was hungry and tired and very sad.",
    "The knight shared his bread and showed the dragon the road home.", "They walked together past rivers, farms and old stone bridges.",
    "At the end of the road the dragon's family was waiting with a feast.", "From that day on the knight and the dragon were the best of friends.",
)]
CUT_INS = ["What time is it in Tokyo?", "Stop, tell me about the weather instead.", "Wait, what is the capital of Spain?",
           "Sorry, how far away is the moon?", "Actually, can you recommend a good book?"]
PAUSED_ON = "over the reply paused it; it plays on"  # the server's line for a pause that was not a turn
BARGE_IN_LOG = ("VAD.vad_handler", "STT.base")  # the server's log lines on what it made of speech over a reply
BACKCHANNELS = ["mm-hmm", "yeah", "okay", "right", "cough"]


def hops(samples: np.ndarray) -> np.ndarray:
    n = len(samples) // HOP
    return np.abs(samples[:n * HOP].astype(np.int32)).reshape(n, HOP).max(axis=1)


def read_raw(path: Path) -> np.ndarray:
    data = path.read_bytes()
    return np.frombuffer(data[:len(data) - len(data) % 2], dtype="<i2")


def cough(seconds: float = 0.25, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    envelope = np.exp(-np.linspace(0, 6, n))
    return (rng.standard_normal(n) * envelope * 9000).clip(-32767, 32767).astype("<i2")


def offset_of(a: np.ndarray, b: np.ndarray, start: int, length: int, max_lag: int = RATE // 2) -> int:
    """The lag d (samples) at which b[i + d] best matches a[i] over a[start:start+length]."""
    seg = a[start:start + length].astype(np.float64)
    window = b[max(0, start - max_lag):start + length + max_lag].astype(np.float64)
    if len(seg) < 10 or len(window) < len(seg):
        return 0
    corr = np.correlate(window, seg, mode="valid")
    return int(np.argmax(corr)) + max(0, start - max_lag) - start


def locate(signal: np.ndarray, template: np.ndarray) -> int:
    """Offset in `signal` where `template` matches best (cross-correlation through the FFT)."""
    signal, template = signal.astype(np.float64), template.astype(np.float64)
    if len(signal) < len(template):
        return 0
    size = 1 << (len(signal) + len(template) - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(template, size)), size)
    return int(np.argmax(corr[:len(signal) - len(template) + 1]))


def user_onset(assistant: np.ndarray, mix: np.ndarray, lag: int, after: int, said: np.ndarray) -> int | None:
    """The sample (mix's timeline) where the user's speech became audible: `said` (what was played into the room) is
    found in the mix less the assistant after `after`, and its first sample at SOUND or above is the onset."""
    shifted = np.zeros_like(mix)
    lo = max(0, lag)
    n = min(len(mix) - lo, len(assistant) - max(0, -lag))
    if n <= 0:
        return None
    shifted[lo:lo + n] = assistant[max(0, -lag):max(0, -lag) + n]
    ref = slice(max(0, after - RATE), after)
    gain = float(np.dot(mix[ref].astype(np.float64), shifted[ref]) / max(1.0, np.dot(shifted[ref].astype(np.float64), shifted[ref])))
    residual = mix.astype(np.float64) - gain * shifted
    search = residual[after:after + 3 * RATE + len(said)]
    audible = np.flatnonzero(np.abs(said.astype(np.int32)) >= SOUND)
    if len(search) < len(said) or len(audible) == 0:
        return None
    return after + locate(search, said) + int(audible[0])


def voice_stop(assistant: np.ndarray, after: int) -> int | None:
    """First sample from `after` on where the assistant falls silent for STOP_SILENCE_S."""
    loud = hops(assistant) >= SOUND
    need = int(STOP_SILENCE_S * RATE / HOP)
    run = 0
    for k in range(after // HOP, len(loud)):
        run = 0 if loud[k] else run + 1
        if run >= need:
            return (k - need + 1) * HOP
    return None


def sound_after(samples: np.ndarray, after: int) -> int | None:
    loud = np.flatnonzero(hops(samples)[after // HOP:] >= SOUND)
    return None if len(loud) == 0 else (after // HOP + loud[0]) * HOP


class Room:
    """The split room, the local-mode server in it, the recordings and the story-telling model."""

    def __init__(self, workdir: Path, server_flags: list[str], socket: bool = False) -> None:
        from tests.conftest import ServerProcess
        from tests.openai_fake import RecordingServer
        from tests.pulse_room import PulseRoom

        self.dir = workdir
        self.pulse = PulseRoom(workdir / "pulse", split=True).start()
        self.llm = RecordingServer(STORY).__enter__()
        env = self.pulse.client_env()
        import os

        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        self.client: subprocess.Popen | None = None
        try:
            mode = ["--mode", "socket"] if socket else ["--mode", "local"]
            self.server = ServerProcess(*mode, "--llm", "open_api", "--open_api_base_url", self.llm.base_url,
                                        *server_flags, ready_timeout=240)
            if socket:  # the room's devices are the client's: it cancels its own echo and tells the server so
                with open(workdir / "client.log", "wb") as log:  # the child holds its own descriptor
                    self.client = subprocess.Popen(
                        [sys.executable, "-u", str(ROOT / "listen_and_play.py"), "--full_duplex", "--host", "127.0.0.1",
                         "--send_port", str(self.server.recv_port), "--recv_port", str(self.server.send_port)],
                        cwd=ROOT, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=log)
                self.server.wait_for(lambda: any("is full duplex" in line for line in self.server.stderr), 60,
                                     "the full-duplex client")
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.speaker_rec = self.pulse.record(workdir / "speaker.raw", "speaker.monitor")
        self.room_rec = self.pulse.record(workdir / "room.raw", "room.monitor")
        time.sleep(1.0)
        self._wavs: dict[str, Path] = {}
        self.said: dict[str, np.ndarray] = {}  # what each wav holds (int16, 16 kHz)

    def wav(self, text: str) -> Path:
        from tests.speech import espeak, write_wav

        if text not in self._wavs:
            samples = cough() if text == "cough" else espeak(text)
            path = self.dir / f"say{len(self._wavs)}.wav"
            write_wav(path, np.concatenate([samples, np.zeros(RATE // 10, "<i2")]))
            self._wavs[text] = path
            self.said[text] = samples
        return self._wavs[text]

    def assistant(self) -> np.ndarray:
        return read_raw(self.dir / "speaker.raw")

    def mix(self) -> np.ndarray:
        return read_raw(self.dir / "room.raw")

    def wait_reply_start(self, after: int, timeout: float = 90.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            start = sound_after(self.assistant(), after)
            if start is not None:
                return start
            time.sleep(0.05)
        raise TimeoutError("no reply came into the room")

    def wait_quiet(self, seconds: float, timeout: float = 90.0) -> None:
        """Until the assistant has been silent for `seconds` (its reply is over)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            loud = np.flatnonzero(hops(self.assistant()) >= SOUND)
            total = len(self.assistant()) // HOP
            if len(loud) == 0 or total - loud[-1] >= seconds * RATE / HOP:
                return
            time.sleep(0.1)
        raise TimeoutError("the assistant did not stop talking")

    def client_log(self) -> list[str]:
        """listen_and_play.py's log lines (socket mode): its devices' latencies."""
        path = self.dir / "client.log"
        return path.read_text(errors="replace").splitlines() if self.client is not None and path.exists() else []

    def cut_log_lines(self) -> int:
        return sum("cut by the user's turn" in line for line in self.server.stderr)

    def close(self) -> int:
        if self.client is not None:  # as Ctrl-C: it says its devices' over/underruns on the way out
            self.client.send_signal(signal.SIGINT)
            try:
                self.client.wait(5)
            except subprocess.TimeoutExpired:
                self.client.kill()
                self.client.wait(5)
        for proc in (self.speaker_rec, self.room_rec):
            proc.terminate()
            proc.wait(5)
        code = self.server.stop()
        self.llm.__exit__(None, None, None)
        self.pulse.stop()
        return code


def over_reply(room: Room, say: str, into_s: float = 1.0) -> dict:
    """Ask for the story, then play `say` `into_s` into the reply; what happened, read off the recordings."""
    start_a = len(room.assistant())
    cuts_before, users_before = room.cut_log_lines(), len(room.server.lines("USER:"))
    log_before = len(room.server.stderr)
    room.pulse.play(room.wav("Please tell me a long story about a knight and a dragon."))
    reply_start = room.wait_reply_start(start_a)
    time.sleep(max(0.0, into_s - (len(room.assistant()) - reply_start) / RATE))
    mark = len(room.mix())
    room.pulse.play(room.wav(say))
    time.sleep(1.0)  # the end of its turn, its transcript
    if room.cut_log_lines() > cuts_before:  # cut: its question is transcribed and answered; wait for that
        deadline = time.monotonic() + 30
        while len(room.server.lines("USER:")) < users_before + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        room.wait_reply_start(len(room.assistant()) - int(0.5 * RATE), timeout=60)
    room.wait_quiet(2.5, timeout=120)
    assistant, mix = room.assistant(), room.mix()
    lag = offset_of(assistant, mix, reply_start, int(0.6 * RATE))
    onset = user_onset(assistant, mix, lag, mark, room.said[say])
    result = {"say": say, "lag_ms": 1000 * lag / RATE, "cut": room.cut_log_lines() > cuts_before,
              "new_users": room.server.lines("USER:")[users_before:],
              "log": [line for line in room.server.stderr[log_before:] if any(name in line for name in BARGE_IN_LOG)]}
    if onset is not None:
        onset_a = onset - lag
        stop = voice_stop(assistant, onset_a)
        result["onset_s"] = onset_a / RATE
        result["stop_ms"] = None if stop is None else 1000 * (stop - onset_a) / RATE
        # did the story go on after the sound (a backchannel; after a cut-in the answer comes instead)
        result["played_on"] = sound_after(assistant, onset_a + RATE) is not None
    return result


def quiet_reply(room: Room) -> dict:
    start_a = len(room.assistant())
    cuts_before, users_before = room.cut_log_lines(), len(room.server.lines("USER:"))
    log_before = len(room.server.stderr)
    room.pulse.play(room.wav("Tell me the story about the knight again, please."))
    room.wait_reply_start(start_a)
    room.wait_quiet(2.5, timeout=120)
    # a sound too short to be a turn pauses the reply for ~300 ms: here, its own echo that the canceller left
    pauses = sum(PAUSED_ON in line for line in room.server.stderr[log_before:])
    return {"cut": room.cut_log_lines() > cuts_before, "new_users": room.server.lines("USER:")[users_before:],
            "pauses": pauses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cut_ins", type=int, default=10)
    parser.add_argument("--backchannels", type=int, default=10)
    parser.add_argument("--quiet_replies", type=int, default=20)
    parser.add_argument("--socket", action="store_true",
                        help="the socket server, with listen_and_play.py --full_duplex in the room, instead of local mode")
    parser.add_argument("--json", help="write every trial here")
    parser.add_argument("--server_log", help="write the server's whole log here (with -- --log_level debug: every cut)")
    parser.add_argument("server_flags", nargs="*", help="after --: flags for s2s_pipeline.py")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    report: dict = {"flags": args.server_flags, "cut_ins": [], "backchannels": [], "quiet": []}
    with tempfile.TemporaryDirectory() as tmp:
        room = Room(Path(tmp), args.server_flags, socket=args.socket)
        try:
            report["devices"] = [line for line in room.server.stderr + room.client_log() if "(latency" in line]
            for k in range(args.cut_ins):
                report["cut_ins"].append(r := over_reply(room, CUT_INS[k % len(CUT_INS)]))
                logger.info("cut-in %d: %s", k + 1, r)
            for k in range(args.backchannels):
                report["backchannels"].append(r := over_reply(room, BACKCHANNELS[k % len(BACKCHANNELS)]))
                logger.info("backchannel %d: %s", k + 1, r)
            for k in range(args.quiet_replies):
                report["quiet"].append(r := quiet_reply(room))
                logger.info("reply %d heard out: %s", k + 1, r)
        finally:
            room.close()
            report["devices"] += [line for line in room.server.stderr + room.client_log()
                                  if "over/underruns" in line]  # said on exit
            if args.server_log:
                Path(args.server_log).write_text("\n".join(room.server.stderr + room.client_log()) + "\n")
    # a cut-in that began while the voice was in a pause of its own (between sentences, or paused by its echo) has
    # no stop to measure: its "stop" comes before the onset
    stops = [r["stop_ms"] for r in report["cut_ins"] if r.get("stop_ms") is not None and r["cut"] and r["stop_ms"] > 0]
    silent = sum(r.get("stop_ms") is not None and r["stop_ms"] <= 0 for r in report["cut_ins"])
    mode = "the socket server and listen_and_play.py --full_duplex" if args.socket else "local mode, full duplex"
    print(f"\nBarge-in in the PulseAudio room ({mode})")
    for line in report.get("devices", []):
        print(line.strip())
    if report["cut_ins"]:
        print(f"cut-ins: {sum(r['cut'] for r in report['cut_ins'])}/{len(report['cut_ins'])} interrupted the reply; "
              f"voice stopped after the user's onset: median {percentile(stops, 50):.0f} ms, p90 "
              f"{percentile(stops, 90):.0f} ms, max {max(stops):.0f} ms (over {len(stops)}; {silent} began in a pause "
              "of the voice)" if stops else "cut-ins: no stop measured")
        heard = sum(bool(r["new_users"]) for r in report["cut_ins"])
        print(f"cut-ins heard as a new question: {heard}/{len(report['cut_ins'])}")
    if report["backchannels"]:
        kept = sum(not r["cut"] for r in report["backchannels"])
        print(f"backchannels: the reply went on {kept}/{len(report['backchannels'])}")
    if report["quiet"]:
        false = sum(r["cut"] or len(r["new_users"]) > 1 for r in report["quiet"])
        print(f"replies heard out with nobody speaking: {false} interrupted themselves out of {len(report['quiet'])}")
        pauses = [r["pauses"] for r in report["quiet"]]
        print(f"  and paused for a moment by their own echo: {sum(pauses)} times (median {percentile(pauses, 50):.0f} "
              f"per reply, max {max(pauses)})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=lambda o: o.item()))  # numpy scalars
    return 0


if __name__ == "__main__":
    sys.exit(main())
