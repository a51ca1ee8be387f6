"""Silero VAD through plain onnxruntime: no torch needed."""
from __future__ import annotations

import numpy as np

from utils.audio import SAMPLE_RATE
from utils.bundled import package_file
from utils.errors import ConfigError
from utils.onnx_session import cpu_session

WINDOW = 512  # samples per call at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window the model expects in front of each window


def bundled_model_path() -> str:
    # The silero-vad package itself imports torch: only its ONNX file is used.
    return package_file("silero_vad", "data/silero_vad.onnx", "pip install --no-deps silero-vad")


class SileroOnnxModel:
    """`reset_states()` and `__call__(window) -> speech probability`, like silero's own OnnxWrapper.
    `fresh()` gives another stream's model: the same (thread-safe) ONNX session, its own state."""

    def __init__(self, path: str | None = None, threads: int = 1, sample_rate: int = SAMPLE_RATE, session=None) -> None:
        if sample_rate != SAMPLE_RATE:
            raise ConfigError(f"the VAD works on {SAMPLE_RATE} Hz audio, not {sample_rate}")
        self.session = session or cpu_session(path or bundled_model_path(), threads, "VAD model")
        self._sr = np.array(sample_rate, dtype=np.int64)
        self.reset_states()

    def fresh(self) -> "SileroOnnxModel":
        return SileroOnnxModel(sample_rate=int(self._sr), session=self.session)

    def reset_states(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT), dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        x = np.concatenate([self._context, window.reshape(1, WINDOW).astype(np.float32)], axis=1)
        out, self._state = self.session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = x[:, -CONTEXT:]
        return float(out[0, 0])
