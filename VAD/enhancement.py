"""Optional noise reduction of each whole utterance before it is transcribed (--audio_enhancement).

DeepFilterNet where its weights are on disk (its package downloads them on first use, which fails offline,
so we only take it when they are already there), else noisereduce's spectral gating, which needs no weights.
On clean speech both lose some detail: it stays off by default.
"""
from __future__ import annotations

import importlib.util
import logging
import os

import numpy as np

from utils.audio import SAMPLE_RATE
from utils.errors import ConfigError

logger = logging.getLogger(__name__)

DEEPFILTERNET_MODEL = "DeepFilterNet3"
# noisereduce removes this share of the estimated noise; 1.0 (its default) also ate into espeak speech and
# raised tiny.en's word error rate on clean speech from 0.04 to 0.25, 0.8 to 0.11 (4 sentences).
PROP_DECREASE = 0.8
MIN_SAMPLES = 2048  # shorter than two of noisereduce's FFT windows: nothing to estimate noise from


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """float32 in [-1, 1], exactly `length` samples (resampling and STFTs may add or drop a few)."""
    audio = np.asarray(audio, dtype=np.float32)[:length]
    if len(audio) < length:
        audio = np.pad(audio, (0, length - len(audio)))
    return np.clip(audio, -1.0, 1.0)


class NoiseReduceEnhancer:
    """Non-stationary spectral gating: the noise floor is tracked over time, so a fan that changes is followed."""

    name = "noisereduce"

    def __init__(self, prop_decrease: float = PROP_DECREASE) -> None:
        import noisereduce

        self._reduce = noisereduce.reduce_noise
        self.prop_decrease = prop_decrease

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        if len(audio) < MIN_SAMPLES:
            return audio
        out = self._reduce(y=audio, sr=SAMPLE_RATE, stationary=False, prop_decrease=self.prop_decrease, n_jobs=1)
        return _fit(out, len(audio))


def deepfilternet_model_dir() -> str | None:
    """Where DeepFilterNet keeps DeepFilterNet3, if its package is installed and the weights are there."""
    if importlib.util.find_spec("df") is None:
        return None
    try:
        from df.utils import get_cache_dir
    except Exception:  # a broken install (libdf missing): fall back, do not crash the VAD
        logger.debug("DeepFilterNet is installed but does not import", exc_info=True)
        return None
    path = os.path.join(get_cache_dir(), DEEPFILTERNET_MODEL)
    return path if os.path.isfile(os.path.join(path, "config.ini")) else None


class DeepFilterNetEnhancer:
    """DeepFilterNet runs at 48 kHz: resample up, enhance, resample down."""

    name = "DeepFilterNet"

    def __init__(self, model_dir: str) -> None:
        import soxr
        import torch
        from df.enhance import enhance, init_df

        self._torch, self._resample, self._enhance = torch, soxr.resample, enhance
        self.model, self.state, _ = init_df(model_dir, log_level="ERROR", log_file=None)
        self.rate = self.state.sr()

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        up = self._resample(audio, SAMPLE_RATE, self.rate).astype(np.float32)
        out = self._enhance(self.model, self.state, self._torch.from_numpy(up).unsqueeze(0))
        return _fit(self._resample(np.asarray(out[0], dtype=np.float32), self.rate, SAMPLE_RATE), len(audio))


def load_enhancer() -> DeepFilterNetEnhancer | NoiseReduceEnhancer:
    """The best enhancer available offline; a ConfigError naming what to install if there is none."""
    model_dir = deepfilternet_model_dir()
    if model_dir is not None:
        try:
            deepfilternet = DeepFilterNetEnhancer(model_dir)
            logger.info("audio enhancement: DeepFilterNet (%s)", model_dir)
            return deepfilternet
        except Exception:
            logger.warning("DeepFilterNet did not load from %s; using noisereduce", model_dir, exc_info=True)
    try:
        noisereduce = NoiseReduceEnhancer()
    except ImportError as e:
        raise ConfigError("--audio_enhancement needs a noise reducer: pip install noisereduce") from e
    logger.info("audio enhancement: noisereduce")
    return noisereduce
