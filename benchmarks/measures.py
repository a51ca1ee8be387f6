"""Pure measurements: percentiles, word error rate, where the voice starts in a reply and when it played."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from utils.audio import BYTES_PER_SAMPLE
from utils.audio import SAMPLE_RATE as RATE

SILENCE_THRESHOLD = 328  # |int16 sample| at or below this (-40 dBFS) counts as silence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks, as numpy's default."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def words(text: str) -> list[str]:
    """Lower-case words without punctuation ("Earth?" and "earth" match; "what's" stays one word)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", text.lower())


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions that turn `reference` into `hypothesis` (Levenshtein)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER: all word edits over all reference words (a missing hypothesis is an empty one)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    edits = sum(edit_distance(words(r), words(h or "")) for r, h in zip(references, hypotheses))
    total = sum(len(words(r)) for r in references)
    if total == 0:
        raise ValueError("the references hold no words")
    return edits / total


def voiced_span(samples: np.ndarray, threshold: int = SILENCE_THRESHOLD) -> tuple[int, int] | None:
    """Indices of the first and last sample louder than `threshold`, or None if all is silence."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if len(loud) == 0:
        return None
    return int(loud[0]), int(loud[-1])


def sample_times(arrivals: Sequence[tuple[int, float]], sample: int) -> tuple[float, float] | None:
    """When `sample` (its index in the reply) arrived and when it played, from the blocks' (bytes, time) arrivals.

    Playback follows the client's model (listen_and_play.Reply): each block plays right after the previous
    one, and never before it arrived. None if the sample never arrived."""
    last_byte = (sample + 1) * BYTES_PER_SAMPLE - 1
    received = 0
    play_end = 0.0
    for size, arrived_at in arrivals:
        play_start = max(play_end, arrived_at)
        if received <= last_byte < received + size:
            offset_s = (sample * BYTES_PER_SAMPLE - received) / BYTES_PER_SAMPLE / RATE
            # A sample split across two blocks plays where its first byte was scheduled, once both arrived.
            return arrived_at, max(play_start + offset_s, arrived_at)
        received += size
        play_end = play_start + size / BYTES_PER_SAMPLE / RATE
    return None


def first_voice_s(pcm: bytes, arrivals: Sequence[tuple[int, float]], question_end: float) -> float | None:
    """Seconds from `question_end` to when the reply's first voiced sample played; None if it had no voice."""
    span = voiced_span(np.frombuffer(pcm[:len(pcm) - len(pcm) % 2], dtype="<i2"))
    times = sample_times(arrivals, span[0]) if span else None
    return times[1] - question_end if times else None
