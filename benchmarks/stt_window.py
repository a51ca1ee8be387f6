#!/usr/bin/env python
"""Whisper's 30-second window against shorter ones: word error rate and time per utterance.

    python benchmarks/stt_window.py [--pads 3 5 7 10 30]

Each question of benchmarks/questions.txt plus a few more, spoken by espeak-ng and by hibari, with 200 ms of
silence on each side (as the VAD cuts it), transcribed by the bundled tiny.en: once with faster-whisper's
own transcribe() (30 s window), and once per pad through STT.faster_whisper_window.ShortWindowTranscriber.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measures import word_error_rate  # noqa: E402

MORE = [
    "Tell me something interesting about dolphins.", "What time does the sun set in winter?",
    "Could you explain how a rainbow forms?", "Which planet is the largest in our solar system?",
    "Please set a timer for ten minutes.", "What is the weather like on Mars?",
    "Who wrote the play Romeo and Juliet?", "How do airplanes stay in the air?",
]


def utterances():
    from benchmarks.questions import load_questions
    from tests.speech import espeak, hibari

    questions = [q.text for q in load_questions()]
    pad = np.zeros(3200, np.float32)
    for question in questions + MORE:
        for voice in (espeak, hibari):
            audio = voice(question).astype(np.float32) / 32768
            loud = np.flatnonzero(np.abs(audio) > 0.01)
            yield question, np.concatenate([pad, audio[loud[0]:loud[-1]], pad])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pads", type=float, nargs="+", default=[3, 5, 7, 10])
    args = parser.parse_args()
    from faster_whisper import WhisperModel

    from STT.faster_whisper_handler import bundled_model_path
    from STT.faster_whisper_window import ShortWindowTranscriber

    model = WhisperModel(bundled_model_path(), device="cpu", compute_type="int8", cpu_threads=2)
    data = list(utterances())

    def full(audio):
        segments, _ = model.transcribe(audio, language="en", beam_size=1, without_timestamps=True,
                                       condition_on_previous_text=False, vad_filter=False)
        return "".join(s.text for s in segments).strip()

    def short(pad):
        window = ShortWindowTranscriber(model, "en", pad)
        return lambda audio: window(audio).text

    ways = [("30 s (faster-whisper)", full)] + [(f"{pad:g} s pad", short(pad)) for pad in args.pads]
    print(f"{len(data)} utterances (espeak-ng and hibari)\n\n| window | word error rate | mean time |\n|---|---|---|")
    for name, transcribe in ways:
        transcribe(data[0][1])  # warm-up
        hypotheses, started = [], time.perf_counter()
        for _, audio in data:
            hypotheses.append(transcribe(audio))
        mean_ms = 1000 * (time.perf_counter() - started) / len(data)
        print(f"| {name} | {word_error_rate([q for q, _ in data], hypotheses):.3f} | {mean_ms:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
