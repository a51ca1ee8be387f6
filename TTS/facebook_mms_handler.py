"""Text to speech with Meta's MMS voices (transformers VITS, facebook/mms-tts-<ISO 639-3>).

One model per language: the sentence's language picks it, it is loaded the first time that language
is spoken and kept for the rest of the run."""
from __future__ import annotations

import logging

from TTS.base import TTSHandler, pcm_blocks
from TTS.voices import MMS_LANGUAGES, pick
from utils.dtypes import torch_dtype
from utils.errors import ConfigError, cannot_load
from utils.pipeline.messages import Sentence

try:
    import torch
    from transformers import AutoTokenizer, VitsModel
except ImportError as e:
    raise ConfigError(f"the facebook-mms backend needs torch and transformers ({e.name or e}): pip install torch==2.13.0 transformers") from e

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "facebook/mms-tts-{lang}"


class FacebookMMSTTSHandler(TTSHandler):
    def setup(self, config, model=None) -> None:
        self.config = config
        self.dtype = torch_dtype(config.torch_dtype, "--tts_torch_dtype")
        self.template = config.model_name or DEFAULT_MODEL
        # VitsModel reads these attributes in forward(): None keeps the model's configured value.
        self.gen_kwargs = {k: v for k, v in config.gen_kwargs.items() if v is not None}
        self.voices: dict[str, tuple] = {}  # ISO 639-3 code -> (model, tokenizer)
        self.default_code = pick(MMS_LANGUAGES, None, config.language, "facebook-mms")
        self.load(self.default_code)  # the default voice must load: a wrong name fails here, as one line
        self.warmup()

    def warmup(self) -> None:
        for _ in self.speak(Sentence("Ready.", None, None)):
            pass

    def model_name(self, code: str) -> str:
        return self.template.replace("{lang}", code)

    def load(self, code: str) -> tuple:
        name = self.model_name(code)
        logger.info("loading MMS voice %s", name)
        try:
            model = VitsModel.from_pretrained(name)
            tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as e:
            raise cannot_load("the MMS voice", name, e) from e
        model = model.to(device=self.config.device, dtype=self.dtype).eval()
        for key, value in self.gen_kwargs.items():
            setattr(model, key, value)
        self.voices[code] = (model, tokenizer)
        return self.voices[code]

    def voice(self, language: str | None) -> tuple:
        """The voice for `language`, loading it on first use; the default voice when it cannot load."""
        code = pick(MMS_LANGUAGES, language, self.config.language, "facebook-mms")
        if code not in self.voices:
            try:
                self.load(code)
            except ConfigError as e:
                logger.warning("%s; speaking '%s' instead", e, self.default_code)
                self.voices[code] = self.voices[self.default_code]  # do not retry on every sentence
        return self.voices[code]

    def speak(self, sentence: Sentence):
        model, tokenizer = self.voice(sentence.language)
        inputs = tokenizer(sentence.text, return_tensors="pt").to(self.config.device)
        if inputs.input_ids.shape[-1] == 0:  # nothing the voice's alphabet can say (VITS fails on no input)
            logger.warning("MMS: nothing to say in %r", sentence.text)
            return
        with torch.inference_mode():
            waveform = model(**inputs).waveform[0]
        yield from pcm_blocks(waveform.float().cpu().numpy(), model.config.sampling_rate, self.config.blocksize)
