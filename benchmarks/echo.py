#!/usr/bin/env python
"""Echo cancellers for barge-in: echo removed, false barge-ins, the user's words kept, CPU time.

    python benchmarks/echo.py [--scenes 8] [--cancellers webrtc speex ...] [--json echo.json]

Each scene is a reply (hibari, the assistant's voice) played on a laptop's speaker, which the user (espeak-ng, other
sentences) interrupts 5 s in. The microphone hears:
  - the reply through the speaker (a 250 Hz high-pass FIR; in "dist" scenes also a tanh saturation, as a small
    speaker played loud), then the room (pyroomacoustics' image-source impulse response of a 4.5 x 3.8 x 2.7 m
    room at the scene's RT60, speaker 12 cm from the microphone; without pyroomacoustics, a synthetic one: white
    noise under an exponential decay of that RT60 after the direct path), then `delay_ms` more (sound card
    buffers: the reference is not perfectly aligned), at `echo_db` above the user's speech;
  - the user, through the same room from 65 cm away;
  - the microphone's hiss (-72 dBFS), and pink noise `snr_db` below the user's speech in noisy scenes.
Each canceller then runs 10 ms at a time with the reply as played as its reference (a fresh canceller per scene:
its convergence counts), and the Silero VAD listens to its output as the pipeline would (threshold 0.3 with the
VAD stage's 0.15 hysteresis): the first window of speech after the user started pauses the reply, silent at the
speaker PAUSE_STOP_MS later (VAD/vad_handler.py pauses at the first window; the devices add the rest), and it stays
silent (the user goes on: a cut-in). Measured on the output:
  ERLE              10 log10(mic energy / output energy) over the echo-only part (the reply before the user
                    speaks), and over its last 2.5 s (converged); the mean over the scenes, in dB
  echo pauses       runs of speech windows during the echo-only part: each would have paused the reply (~300 ms)
  false barge-ins   runs of >= 300 ms of speech during the echo-only part: each would have been taken for a cut-in
  onset             the median time from the user's first voiced sample to the end of the first speech window after
                    it: the speech detector's share of the time to silence ("none": the echo itself is speech)
  barge-ins heard   scenes where 300 ms of the user's speech were heard, and the median time from the user's first
                    voiced sample to it
  WER               the bundled Whisper tiny.en on the user's part of the output, against the sentence said; its
                    first words overlap the reply until the pause: a canceller that suppresses the user's voice while
                    the echo is there loses them
  CPU               process CPU time in the canceller per second of audio (livekit's native threads included)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measures import voiced_span, word_error_rate  # noqa: E402
from utils.audio import SAMPLE_RATE as RATE  # noqa: E402

FRAME = RATE // 100  # 10 ms
REPLY_AT = 0.5  # s: the reply starts playing
USER_AFTER = 5.0  # s after the reply starts: the user interrupts
CONVERGED = 2.5  # s: the end of the echo-only part that counts as converged
USER_RMS = 800.0  # the user's speech at the microphone (about -32 dBFS)
MIC_NOISE_RMS = 8.0  # the microphone's own hiss in every scene (about -72 dBFS): no output is ever silent
BARGE_IN_MS = 300  # this much continuous speech interrupts the reply
PAUSE_STOP_MS = 55  # from the window that pauses the reply to its silence at the speaker: the devices' buffers, 75 ms
# at 256-sample blocks in the PulseAudio room (git log 9e7df07); the 128-sample blocks used since take ~20 ms less there
# (a click from the output callback to the input callback: ~44 ms against ~65)
VAD_THRESH = 0.3  # the VAD stage's default (arguments_classes/vad_arguments.py), with its 0.15 hysteresis

REPLIES = [  # none of these is in benchmarks/questions.txt or benchmarks/turn_questions.txt
    "The museum opens at nine in the morning and closes in the early evening. On weekends it stays open a little "
    "longer, and there is a guided tour every afternoon.",
    "Tomatoes grow best in a sunny spot with rich soil and regular watering. Pinch off the side shoots as the plant "
    "grows, and tie the main stem to a wooden stake.",
    "The recipe needs two cups of flour, a pinch of salt and some warm water. Knead the dough for ten minutes, then "
    "let it rest under a damp cloth.",
    "Lighthouses were built to guide ships safely along dangerous coasts. Today most of them run automatically and "
    "are watched from far away.",
]
QUESTIONS = [  # ones that tiny.en gets right when espeak-ng says them alone
    "Stop, what is the weather like in Berlin?",
    "Excuse me, where is the nearest pharmacy?",
    "Wait a second, can you repeat that please?",
    "Hang on, what does the word gravity mean?",
    "Sorry, I meant the train station, not the airport.",
    "Stop, how long should I cook the rice?",
    "Actually, can you play some music instead?",
    "Wait, who invented the telephone?",
]


@dataclass(frozen=True)
class Scene:
    delay_ms: int  # reference-to-echo misalignment on top of the room's own path
    echo_db: float  # echo level above the user's speech at the microphone
    snr_db: float | None  # the user's speech above pink noise; None: no noise
    rt60: float  # s: the room's reverberation time
    distorted: bool = False  # the speaker saturates (not a linear echo path)

    @property
    def label(self) -> str:
        noise = f"snr {self.snr_db:g}" if self.snr_db is not None else "quiet"
        return f"{self.delay_ms} ms, echo {self.echo_db:+g} dB, {noise}, rt60 {self.rt60:g}{', dist' if self.distorted else ''}"


SCENES = [
    Scene(30, 0, None, 0.25),
    Scene(60, 6, None, 0.35),
    Scene(120, 6, 20, 0.35),
    Scene(60, 12, 20, 0.45),
    Scene(90, 6, 10, 0.35),
    Scene(30, 6, None, 0.35, distorted=True),
    Scene(120, 12, 20, 0.5, distorted=True),
    Scene(250, 6, 20, 0.35),
]


def scenes(count: int) -> list[Scene]:
    """The fixed scenes first, then random ones (seeded) if more are asked for."""
    rng = np.random.default_rng(1)
    extra = [
        Scene(
            int(rng.integers(20, 200)),
            float(rng.integers(0, 13)),
            [None, 10.0, 20.0][int(rng.integers(3))],
            round(float(rng.uniform(0.2, 0.6)), 2),
            bool(rng.integers(2)),
        )
        for _ in range(max(0, count - len(SCENES)))
    ]
    return (SCENES + extra)[:count]


# -- the simulated room ---------------------------------------------------------------------------------------


def room_paths(rt60: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """Impulse responses speaker -> microphone and user -> microphone, and what made them."""
    try:
        import pyroomacoustics as pra
    except ImportError:
        return synthetic_rir(rt60, 0.12, rng), synthetic_rir(rt60, 0.65, rng), "synthetic"
    size = [4.5, 3.8, 2.7]
    absorption, max_order = pra.inverse_sabine(rt60, size)
    room = pra.ShoeBox(size, fs=RATE, materials=pra.Material(absorption), max_order=max_order)
    room.add_source([2.0, 1.5, 0.80])  # the laptop's speaker
    room.add_source([2.1, 2.1, 1.05])  # the user's mouth, 65 cm away
    room.add_microphone([2.12, 1.5, 0.82])
    room.compute_rir()
    return np.asarray(room.rir[0][0]), np.asarray(room.rir[0][1]), "pyroomacoustics"


def synthetic_rir(rt60: float, distance_m: float, rng: np.random.Generator) -> np.ndarray:
    """A direct path (amplitude 1/r) after distance/c, then white noise that decays by 60 dB per `rt60`."""
    direct = int(distance_m / 343 * RATE)
    t = np.arange(int(rt60 * RATE)) / RATE
    tail = rng.standard_normal(len(t)) * 10 ** (-3 * t / rt60) * 0.02
    rir = np.concatenate([np.zeros(direct), tail])
    rir[direct] += 1 / max(distance_m, 0.1)
    return rir


def highpass_fir(cutoff_hz: float = 250, taps: int = 255) -> np.ndarray:
    """Windowed-sinc high-pass: a small speaker plays no bass."""
    n = np.arange(taps) - taps // 2
    lowpass = np.sinc(2 * cutoff_hz / RATE * n) * np.hamming(taps)
    lowpass /= lowpass.sum()
    return -lowpass + (n == 0)


def pink_noise(length: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(length))
    spectrum /= np.sqrt(np.maximum(np.fft.rfftfreq(length, 1 / RATE), 20.0))
    return np.fft.irfft(spectrum, length)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def voiced(samples: np.ndarray) -> np.ndarray:
    span = voiced_span(samples)
    return samples[span[0] : span[1] + 1] if span else samples


def fft_convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = len(a) + len(b) - 1
    size = 1 << (n - 1).bit_length()
    return np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(b, size), size)[:n]


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


class Mix:
    """One scene's microphone: the echo of what is played, the user, the noise. `microphone(played)` hears any
    version of the reply (one stopped by a barge-in), through the same speaker, room, delay and gain."""

    def __init__(self, scene: Scene, index: int, reply: np.ndarray, question: np.ndarray, text: str) -> None:
        rng = np.random.default_rng(index)
        self.scene, self.question = scene, text
        self.speaker_rir, user_rir, self.rir = room_paths(scene.rt60, rng)
        start, user_start = int(REPLY_AT * RATE), int((REPLY_AT + USER_AFTER) * RATE)
        self.length = max(start + len(reply), user_start + len(question)) + RATE // 2
        self.echo_only = (start, user_start)  # samples: the reply plays, the user has not started
        self.user = (user_start, user_start + len(question))  # samples: the user's speech
        self.played = np.zeros(self.length, np.int16)  # the reference: the reply as it leaves the speaker
        self.played[start : start + len(reply)] = reply
        self._peak = float(np.abs(self._cone(self.played)).max())
        echo = self._echo(self.played, 1.0)
        self._gain = USER_RMS * 10 ** (scene.echo_db / 20) / rms(echo[start : start + len(reply)])

        near = np.zeros(self.length)
        near[self.user[0] : self.user[1]] = question
        near = fft_convolve(near, user_rir)[: self.length]
        near *= USER_RMS / rms(near[self.user[0] : self.user[1]])
        noise = rng.standard_normal(self.length) * MIC_NOISE_RMS
        if scene.snr_db is not None:
            pink = pink_noise(self.length, rng)
            noise += pink * USER_RMS * 10 ** (-scene.snr_db / 20) / rms(pink)
        self.user_alone = near + noise  # the microphone without the echo
        self.mic = self.microphone(self.played)

    def _cone(self, played: np.ndarray) -> np.ndarray:
        return fft_convolve(played / 32768.0, highpass_fir())[: self.length]

    def _speaker(self, played: np.ndarray) -> np.ndarray:
        sound = self._cone(played)
        if self.scene.distorted:  # saturates: -2.4 dB at half the reply's peak, -6.3 dB at its peak
            sound = self._peak * np.tanh(2 * sound / self._peak) / 2
        return sound

    def _echo(self, played: np.ndarray, gain: float) -> np.ndarray:
        delayed = np.concatenate([np.zeros(self.scene.delay_ms * RATE // 1000), self._speaker(played)])
        return gain * fft_convolve(delayed, self.speaker_rir)[: self.length]

    def microphone(self, played: np.ndarray) -> np.ndarray:
        return to_int16(self._echo(played, self._gain) + self.user_alone)

    def stopped_at(self, sample: int) -> np.ndarray:
        played = self.played.copy()
        played[sample:] = 0
        return played


# -- the measurements ------------------------------------------------------------------------------------------


@dataclass
class Run:
    out: np.ndarray  # int16: the canceller's output
    speech: list[bool]  # per VAD window of the output: speech?
    onset: int | None  # end of the first speech window after the user started: the reply pauses there
    barge_in: int | None  # sample where BARGE_IN_MS of the user's speech had been heard
    cpu_s: float  # process CPU time spent in the canceller


def run(name: str | None, mix: Mix, vad) -> Run:
    """The canceller on the scene, 10 ms at a time, with the VAD listening to its output as the pipeline would:
    its first speech window after the user started pauses the reply, silent PAUSE_STOP_MS later."""
    from utils.echo_cancel import load_echo_canceller
    from VAD.silero_onnx import WINDOW

    aec = load_echo_canceller(name)
    mic, played = mix.mic, mix.played
    out = np.zeros_like(mic)
    speech: list[bool] = []
    speaking, heard, onset, barge_in, cpu_s = False, 0, None, None, 0.0
    vad.reset_states()
    need = -(-BARGE_IN_MS * RATE // 1000 // WINDOW)
    for i in range(0, len(mic) - FRAME + 1, FRAME):
        if aec is None:
            out[i : i + FRAME] = mic[i : i + FRAME]
        else:
            started = time.process_time()
            out[i : i + FRAME] = aec.process(mic[i : i + FRAME], played[i : i + FRAME])
            cpu_s += time.process_time() - started
        while (len(speech) + 1) * WINDOW <= i + FRAME:
            at = len(speech) * WINDOW
            prob = vad(out[at : at + WINDOW].astype(np.float32) / 32768)
            speaking = prob >= VAD_THRESH or (speaking and prob >= VAD_THRESH - 0.15)
            speech.append(speaking)
            if at + WINDOW > mix.user[0] and speaking and onset is None:
                onset = at + WINDOW
                played = mix.stopped_at(onset + PAUSE_STOP_MS * RATE // 1000)
                mic = mix.microphone(played)  # the same up to the stop: the room is causal
            if barge_in is None and at >= mix.user[0]:
                heard = heard + 1 if speaking else 0
                if heard >= need:
                    barge_in = at + WINDOW
    return Run(out, speech, onset, barge_in, cpu_s)


def erle_db(mic: np.ndarray, out: np.ndarray, span: tuple[int, int]) -> float:
    energy_in = np.sum(np.square(mic[span[0] : span[1]], dtype=np.float64))
    energy_out = np.sum(np.square(out[span[0] : span[1]], dtype=np.float64))
    return float(10 * np.log10(energy_in / max(energy_out, 1.0)))


def speech_runs(speech: list[bool], span: tuple[int, int]) -> int:
    """Runs of speech windows that start inside `span` (samples)."""
    from VAD.silero_onnx import WINDOW

    flags = speech[span[0] // WINDOW : span[1] // WINDOW]
    return sum(flag and (i == 0 or not flags[i - 1]) for i, flag in enumerate(flags))


def false_barge_ins(speech: list[bool], span: tuple[int, int]) -> int:
    """Runs of speech windows of at least BARGE_IN_MS inside `span` (samples)."""
    from VAD.silero_onnx import WINDOW

    need = -(-BARGE_IN_MS * RATE // 1000 // WINDOW)
    count = run_length = 0
    for flag in speech[span[0] // WINDOW : span[1] // WINDOW]:
        run_length = run_length + 1 if flag else 0
        count += run_length == need
    return count


def transcribe(model, audio: np.ndarray, span: tuple[int, int]) -> str:
    part = audio[max(0, span[0] - RATE * 3 // 10) : span[1] + RATE // 2].astype(np.float32) / 32768
    segments, _ = model.transcribe(  # as the STT stage decodes: greedy, no temperature fallback
        part,
        language="en",
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        condition_on_previous_text=False,
        vad_filter=False,
    )
    return "".join(s.text for s in segments).strip()


def measure(name: str | None, mix: Mix, vad, whisper) -> dict:
    result = run(name, mix, vad)
    converged = (max(mix.echo_only[0], mix.echo_only[1] - int(CONVERGED * RATE)), mix.echo_only[1])
    latency = None if result.barge_in is None else 1000 * (result.barge_in - mix.user[0]) / RATE
    return {
        "erle_db": round(erle_db(mix.mic, result.out, mix.echo_only), 2),
        "erle_converged_db": round(erle_db(mix.mic, result.out, converged), 2),
        "echo_pauses": speech_runs(result.speech, mix.echo_only),
        "false_barge_ins": false_barge_ins(result.speech, mix.echo_only),
        "onset_ms": None if result.onset is None else 1000 * (result.onset - mix.user[0]) / RATE,
        "barge_in_ms": latency,
        "heard": transcribe(whisper, result.out, mix.user),
        "cpu_ms_per_s": round(1000 * result.cpu_s / (len(mix.mic) / RATE), 2),
    }


def summarize(runs: list[dict], questions: list[str]) -> dict:
    latencies = [r["barge_in_ms"] for r in runs if r["barge_in_ms"] is not None]
    onsets = [r["onset_ms"] for r in runs if r["onset_ms"] is not None]
    return {
        "echo_pauses": sum(r["echo_pauses"] for r in runs),
        "onset_ms": round(float(np.median(onsets))) if onsets else None,
        "erle_db": round(float(np.mean([r["erle_db"] for r in runs])), 1),
        "erle_converged_db": round(float(np.mean([r["erle_converged_db"] for r in runs])), 1),
        "false_barge_ins": sum(r["false_barge_ins"] for r in runs),
        "barge_ins": len(latencies),
        "barge_in_ms": round(float(np.median(latencies))) if latencies else None,
        "wer": round(word_error_rate(questions, [r["heard"] for r in runs]), 3),
        "cpu_ms_per_s": round(float(np.mean([r["cpu_ms_per_s"] for r in runs])), 1),
    }


def tables(results: dict, scene_list: list[Scene], clean_wer: float, room: str) -> str:
    measured = {name: r for name, r in results.items() if "summary" in r}
    lines = [
        f"{len(scene_list)} scenes in a {room} room; Whisper tiny.en on the user's speech without echo: WER {clean_wer:.3f}",
        "",
        "| canceller | ERLE dB | ERLE dB converged | echo pauses | false barge-ins | onset ms | barge-ins heard "
        "(median ms) | WER | CPU ms per s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        if name not in measured:
            lines.append(f"| {name} | not installed | | | | | | | |")
            continue
        s = result["summary"]
        latency = f"{s['barge_in_ms']}" if s["barge_in_ms"] is not None else "-"
        onset = f"{s['onset_ms']}" if s["onset_ms"] is not None else "-"
        lines.append(
            f"| {name} | {s['erle_db']:.1f} | {s['erle_converged_db']:.1f} | {s['echo_pauses']} | {s['false_barge_ins']} | "
            f"{onset} | "
            f"{s['barge_ins']}/{len(scene_list)} ({latency}) | {s['wer']:.3f} | {s['cpu_ms_per_s']:.1f} |"
        )
    lines += [
        "",
        "Per scene: ERLE dB / echo pauses / onset ms",
        "",
        "| scene | " + " | ".join(measured) + " |",
        "|---" * (1 + len(measured)) + "|",
    ]
    for i, scene in enumerate(scene_list):
        cells = [cell(r["scenes"][i]) for r in measured.values()]
        lines.append(f"| {scene.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cell(scene: dict) -> str:
    onset = "-" if scene["onset_ms"] is None else f"{scene['onset_ms']:.0f}"
    return f"{scene['erle_db']:.1f} / {scene['echo_pauses']} / {onset}"


def installed(name: str) -> bool:
    import importlib.util

    from utils.echo_cancel import BACKENDS

    return importlib.util.find_spec(BACKENDS[name].module.split(".")[0]) is not None


def main(argv: list[str] | None = None) -> int:
    from utils.echo_cancel import BACKENDS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scenes", type=int, default=len(SCENES), help=f"how many scenes (the first {len(SCENES)} are fixed)"
    )
    parser.add_argument("--cancellers", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--json", help="write every measurement here")
    args = parser.parse_args(argv)
    if args.scenes < 1:
        parser.error("--scenes must be at least 1")

    from faster_whisper import WhisperModel

    from STT.faster_whisper_handler import bundled_model_path
    from tests.speech import espeak, hibari
    from VAD.silero_onnx import SileroOnnxModel

    whisper = WhisperModel(bundled_model_path(), device="cpu", compute_type="int8", cpu_threads=2)
    vad = SileroOnnxModel()
    scene_list = scenes(args.scenes)
    replies = [voiced(hibari(text)) for text in REPLIES]
    questions = [voiced(espeak(text)) for text in QUESTIONS]
    names: list[str | None] = [None] + [n for n in args.cancellers if installed(n)]
    results: dict[str, dict] = {n or "none": {"scenes": []} for n in names}
    results.update({n: {"missing": True} for n in args.cancellers if not installed(n)})
    texts, clean = [], []
    for i, scene in enumerate(scene_list):
        k = i % len(QUESTIONS)
        mix = Mix(scene, i, replies[i % len(REPLIES)], questions[k], QUESTIONS[k])
        texts.append(mix.question)
        clean.append(transcribe(whisper, to_int16(mix.user_alone), mix.user))
        for name in names:
            results[name or "none"]["scenes"].append({"scene": asdict(scene), **measure(name, mix, vad, whisper)})
        print(f"scene {i + 1}/{len(scene_list)} done: {scene.label} ({mix.rir} room)", file=sys.stderr)
    for result in results.values():
        if "scenes" in result:
            result["summary"] = summarize(result["scenes"], texts)
    clean_wer = word_error_rate(texts, clean)
    print(tables(results, scene_list, clean_wer, mix.rir))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"clean_wer": clean_wer, "heard_without_echo": clean, "results": results}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
