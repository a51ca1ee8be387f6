"""Spoken questions made on the spot: espeak-ng (a voice unlike the assistant's) or hibari."""
from __future__ import annotations

import shutil
import subprocess
import tempfile

import numpy as np

RATE = 16000


def espeak(text: str, speed_wpm: int = 150) -> np.ndarray:
    """int16 samples at 16 kHz of espeak-ng saying `text`."""
    import soundfile as sf
    import soxr

    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed_wpm), "-w", f.name, text], check=True)
        audio, rate = sf.read(f.name, dtype="float32")
    audio = soxr.resample(audio, rate, RATE) if rate != RATE else audio
    return (np.clip(audio, -1, 1) * 32767).astype("<i2")


def hibari(text: str) -> np.ndarray:
    """int16 samples at 16 kHz of hibari saying `text`."""
    import soxr
    from hibari import Hibari

    audio = Hibari()(text, seed=0)
    return (np.clip(soxr.resample(audio, 24000, RATE), -1, 1) * 32767).astype("<i2")


def with_silence(samples: np.ndarray, before_s: float = 0.5, after_s: float = 0.0) -> np.ndarray:
    return np.concatenate([np.zeros(int(before_s * RATE), "<i2"), samples, np.zeros(int(after_s * RATE), "<i2")])


def write_wav(path, samples: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), samples, RATE, subtype="PCM_16")
