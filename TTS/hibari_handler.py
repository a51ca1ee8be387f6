"""Text to speech with hibari (a distilled Kokoro voice, ONNX, shipped in the wheel)."""
from __future__ import annotations

import logging

import numpy as np
from hibari import Hibari

from TTS.base import OUTPUT_RATE, TTSHandler
from utils.audio import blocks, resample, to_int16, trim_silence
from utils.errors import ConfigError
from utils.messages import Sentence

logger = logging.getLogger(__name__)


class HibariTTSHandler(TTSHandler):
    """Sentence in, AudioOut blocks out. After the reply's last sentence the pipeline listens again."""

    def setup(self, config, model=None) -> None:
        self.config = config
        if model is None:
            try:
                model = Hibari(voice=config.voice, model=config.model_name, threads=config.threads)
            except Exception as e:  # unknown voice, missing file, a voice download that cannot happen offline
                raise ConfigError(f"cannot load the hibari voice '{config.voice}': {e}") from e
        self.model = model
        self.warmup()

    def warmup(self) -> None:
        self.synthesize("Ready.")

    def synthesize(self, text: str) -> np.ndarray:
        audio = trim_silence(self.model(text, speed=self.config.speed), self.model.sample_rate)
        return to_int16(resample(audio, self.model.sample_rate, OUTPUT_RATE))

    def speak(self, sentence: Sentence):
        yield from blocks(self.synthesize(sentence.text), self.config.blocksize)
