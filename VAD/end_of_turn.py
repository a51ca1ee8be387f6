"""Is the user done? Smart Turn v3.2 hears it in the audio; the transcript's punctuation says it in words.

Smart Turn v3.2 (BSD-2, pipecat-ai) is a Whisper-encoder classifier: the last 8 s of an utterance as 80-bin
log-mel features in, the probability that the turn is complete out. Its ONNX file ships inside the pipecat-ai
wheel (installed with --no-deps: only the file is used, none of pipecat's runtime).
"""
from __future__ import annotations

import re

import numpy as np

from utils.audio import SAMPLE_RATE as RATE
from utils.bundled import package_file
from utils.onnx_session import cpu_session

SECONDS = 8  # what the model was trained on: longer is cut from the front, shorter padded in front
INSTALL_HINT = "pip install --no-deps 'pipecat-ai==1.14.0' (or pass --end_of_turn silence)"


def bundled_model_path() -> str:
    return package_file("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx", INSTALL_HINT)


class SmartTurnModel:
    """`probability(audio)` -> P(the turn is complete), for float32 16 kHz audio ending at the pause.

    The features are Whisper's log-mel as transformers' WhisperFeatureExtractor makes them for the model (waveform
    normalised to zero mean and unit variance, 8 s), computed by faster-whisper's numpy extractor: the same values
    (within 3e-5), without importing torch. transformers' extractor loads torch: 1.3 s of the server's start-up and
    ~195 MB, and its OpenMP runtime, which llama.cpp then shares (one libgomp.so.1 per process)."""

    def __init__(self, path: str | None = None, threads: int = 1) -> None:
        from faster_whisper.feature_extractor import FeatureExtractor

        self.session = cpu_session(path or bundled_model_path(), threads, "the end-of-turn model")
        self.features = FeatureExtractor(feature_size=80, sampling_rate=RATE, hop_length=160, chunk_length=SECONDS,
                                         n_fft=400)

    def probability(self, audio: np.ndarray) -> float:
        n = SECONDS * RATE
        audio = np.asarray(audio, dtype=np.float32)[-n:]
        audio = np.pad(audio, (n - len(audio), 0))
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        features = self.features(audio, padding=0)[None].astype(np.float32)
        return float(self.session.run(None, {"input_features": features})[0][0, 0])


# A sentence end: . ? ! and their CJK forms, maybe followed by closing quotes or brackets, but not an ellipsis.
_SENTENCE_END = re.compile(r"(?<!\.\.)(?<!…)[.?!。？！](?:[\"'”’)\]]*)\s*$")


def ends_sentence(text: str) -> bool:
    """Whisper-family recognisers punctuate: "What is the capital" or "Why is the..." is a turn not yet done."""
    return bool(_SENTENCE_END.search(text.strip()))
