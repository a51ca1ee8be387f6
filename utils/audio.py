"""The pipeline's audio format, sample-rate conversion and fixed-size blocking for outgoing audio."""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000  # of all audio in and out of the pipeline: mono int16 little-endian (the protocol's, Silero's, Whisper's)
BYTES_PER_SAMPLE = 2
BYTES_PER_SECOND = SAMPLE_RATE * BYTES_PER_SAMPLE


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    if from_rate == to_rate or len(audio) == 0:
        return audio.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(audio.astype(np.float32, copy=False), from_rate, to_rate)


def to_int16(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")


def blocks(samples: np.ndarray, block_size: int) -> list[bytes]:
    """Cut int16 samples into blocks of exactly `block_size`, zero-padding the last one."""
    if len(samples) == 0:
        return []
    padded = np.pad(samples, (0, -len(samples) % block_size))
    return [padded[i:i + block_size].tobytes() for i in range(0, len(padded), block_size)]


def trim_silence(audio: np.ndarray, rate: int, keep_lead_s: float = 0.005, keep_trail_s: float = 0.2,
                 threshold: float = 10 ** (-45 / 20)) -> np.ndarray:
    """Cut leading and trailing silence down to `keep_lead_s` / `keep_trail_s` (a voice that starts each
    sentence with 0.3 s of silence delays the first sound of every reply by as much). 5 ms before the first sample
    over `threshold` keeps the onset whole: hibari's voices rise from -45 to -40 dBFS within 5 ms."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if len(loud) == 0:
        return audio[:0]
    start = max(0, loud[0] - int(keep_lead_s * rate))
    end = min(len(audio), loud[-1] + 1 + int(keep_trail_s * rate))
    return audio[start:end]
