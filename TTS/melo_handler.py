"""Text to speech with MeloTTS: one model per language (loaded when first spoken, then kept), the speaker
chosen by the sentence's language.

MeloTTS does not install from PyPI (melotts 0.1.1 there lacks the requirements file its setup reads) and
its weights download from the model hub on first use."""
from __future__ import annotations

import logging
from typing import Callable

from TTS.base import TTSHandler, pcm_blocks
from TTS.voices import MELO_VOICES, pick
from utils.errors import ConfigError, cannot_load
from utils.pipeline.messages import Sentence

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "MeloTTS is not installed: pip install it from its source repository myshell-ai/MeloTTS "
    "(PyPI's melotts 0.1.1 does not build), then run: python -m unidic download"
)


def melo_tts_class():
    try:
        from melo.api import TTS
    except ImportError as e:
        raise ConfigError(INSTALL_HINT) from e
    return TTS


class MeloTTSHandler(TTSHandler):
    def setup(self, config, model: Callable | None = None) -> None:
        """`model`, for tests: a function Melo language ('EN') -> an object with Melo's TTS interface."""
        self.config = config
        self.load_model = model or self.load_melo
        self.gen_kwargs = dict(config.gen_kwargs)
        self.models: dict[str, object] = {}  # Melo language -> loaded model
        self.voice(None)  # the default language loads now: a missing package or model fails here
        self.warmup()

    def warmup(self) -> None:
        for _ in self.speak(Sentence("Ready.", None, None)):
            pass

    def load_melo(self, melo_language: str):
        tts_class = melo_tts_class()
        files = {}
        if self.config.model_name:
            folder = self.config.model_name.replace("{lang}", melo_language)
            files = {"config_path": f"{folder}/config.json", "ckpt_path": f"{folder}/checkpoint.pth"}
        try:
            return tts_class(language=melo_language, device=self.config.device, **files)
        except Exception as e:  # a download that cannot happen offline, a missing file, a bad device
            raise cannot_load("the MeloTTS voice", melo_language, e) from e

    def voice(self, language: str | None) -> tuple:
        """(model, speaker id) for `language`; the model is loaded on first use."""
        melo_language, speaker = pick(MELO_VOICES, language, self.config.language, "melo")
        if melo_language not in self.models:
            logger.info("loading MeloTTS %s", melo_language)
            self.models[melo_language] = self.load_model(melo_language)
        model = self.models[melo_language]
        speakers = dict(model.hps.data.spk2id)
        if speaker not in speakers:
            fallback = next(iter(speakers))
            logger.warning("MeloTTS %s has no speaker %s; using %s", melo_language, speaker, fallback)
            speaker = fallback
        return model, speakers[speaker]

    def speak(self, sentence: Sentence):
        model, speaker_id = self.voice(sentence.language)
        audio = model.tts_to_file(sentence.text, speaker_id, quiet=True, **self.gen_kwargs)
        yield from pcm_blocks(audio, model.hps.data.sampling_rate, self.config.blocksize)
