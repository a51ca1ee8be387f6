"""Text to speech with hibari (a distilled Kokoro voice, ONNX, shipped in the wheel)."""
from __future__ import annotations

import logging

import numpy as np
from hibari import Hibari

from TTS.base import TTSHandler
from utils.audio import SAMPLE_RATE, blocks, resample, to_int16, trim_silence
from utils.errors import ConfigError
from utils.pipeline.messages import Sentence

logger = logging.getLogger(__name__)

DEFAULT_VOICE = "heart"  # in the package: no download


class HibariTTSHandler(TTSHandler):
    """Sentence in, AudioOut blocks out. After the reply's last sentence the pipeline listens again."""

    def setup(self, config, model=None) -> None:
        self.config = config
        if model is None:
            voice = config.voice or DEFAULT_VOICE
            try:
                model = Hibari(voice=voice, model=config.model_name, threads=config.threads)
            except Exception as e:  # unknown voice, missing file, a voice download that cannot happen offline
                raise ConfigError(f"cannot load the hibari voice '{voice}': {e}") from e
        self.model = model
        self.warmup()

    def warmup(self) -> None:
        self.synthesize("Ready.")

    def synthesize(self, text: str) -> np.ndarray:
        audio = trim_silence(self.model(text, speed=self.config.speed), self.model.sample_rate)
        return to_int16(resample(audio, self.model.sample_rate, SAMPLE_RATE))

    def speak(self, sentence: Sentence):
        yield from blocks(self.synthesize(sentence.text), self.config.blocksize)
