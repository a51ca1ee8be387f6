"""Sample-rate conversion and fixed-size blocking for outgoing audio."""
from __future__ import annotations

import numpy as np


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
