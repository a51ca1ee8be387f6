"""Transcribing audio back to words, for checking what the assistant said (words() as the benchmarks count them)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from benchmarks.measures import words


@lru_cache(maxsize=1)
def whisper():
    from faster_whisper import WhisperModel

    from STT.faster_whisper_handler import bundled_model_path

    return WhisperModel(bundled_model_path(), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(pcm: bytes | np.ndarray) -> str:
    samples = np.frombuffer(bytes(pcm), dtype="<i2") if not isinstance(pcm, np.ndarray) else pcm
    segments, _ = whisper().transcribe(samples.astype(np.float32) / 32768, language="en", beam_size=1)
    return " ".join(s.text.strip() for s in segments)


def word_recall(expected: str, heard: str) -> float:
    """Share of the expected words that were heard (order-free; robust to small ASR slips)."""
    expected_words, heard_words = words(expected), set(words(heard))
    return sum(w in heard_words for w in expected_words) / max(1, len(expected_words))
