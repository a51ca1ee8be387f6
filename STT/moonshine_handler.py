"""Speech to text with transformers' Moonshine (English): raw audio in, no 30-second padding."""
from __future__ import annotations

import math

import numpy as np

from STT.transformers_stt import TransformersSTTHandler
from utils.audio import SAMPLE_RATE
from utils.errors import ConfigError

# Moonshine's model card: more tokens than this per second of audio means the decoder is looping.
TOKENS_PER_SECOND = 6.5


class MoonshineSTTHandler(TransformersSTTHandler):
    default_model = "UsefulSensors/moonshine-base"
    what = "Moonshine model"

    def check_config(self, config) -> None:
        if config.language not in ("en", "auto"):
            raise ConfigError(f"moonshine transcribes English only; for --language {config.language} use --stt whisper")
        if config.compile_mode:
            raise ConfigError("--stt_compile_mode applies to --stt whisper only (moonshine's input length varies)")

    def transcribe(self, audio: np.ndarray) -> tuple[str, str | None]:
        inputs = self.processor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        limit = max(1, math.ceil(len(audio) / SAMPLE_RATE * TOKENS_PER_SECOND))
        kwargs = {**self.gen_kwargs, "max_new_tokens": min(self.gen_kwargs.get("max_new_tokens", limit), limit)}
        mask = inputs.get("attention_mask")
        if mask is not None:
            kwargs["attention_mask"] = mask.to(self.device)
        ids = self.model.generate(inputs.input_values.to(self.device, self.dtype), **kwargs)
        return self.decode(ids), "en"
