"""Speech to text with transformers' Whisper: a fixed language, or `auto` (detected per utterance)."""
from __future__ import annotations

import logging

import numpy as np
import torch

from STT.language_choice import LanguageChooser
from STT.transformers_stt import TransformersSTTHandler
from utils.audio import SAMPLE_RATE
from utils.errors import ConfigError
from utils.torch_compile import use_repo_compile_cache

logger = logging.getLogger(__name__)

PROMPT_TOKENS = 4  # <|startoftranscript|><|lang|><|transcribe|><|notimestamps|>


class WhisperSTTHandler(TransformersSTTHandler):
    default_model = "openai/whisper-small"  # multilingual and small enough for a CPU
    what = "Whisper model"

    def prepare(self) -> None:
        generation_config = self.model.generation_config
        lang_to_id = getattr(generation_config, "lang_to_id", None) or {}
        self.multilingual = bool(getattr(generation_config, "is_multilingual", bool(lang_to_id)) and lang_to_id)
        self.id_to_language = {i: token.strip("<|>") for token, i in lang_to_id.items()}
        language = self.config.language
        self.detects_language = self.multilingual and language == "auto"
        if not self.multilingual and language not in ("en", "auto"):
            raise ConfigError(f"this Whisper model is English-only; --language {language} needs a multilingual one")
        if self.multilingual and language != "auto" and f"<|{language}|>" not in lang_to_id:
            raise ConfigError(f"Whisper does not know --language '{language}'; give a code such as en, fr, de, or auto")
        self.fit_max_new_tokens()
        if self.config.compile_mode:
            self.compile(self.config.compile_mode)

    def fit_max_new_tokens(self) -> None:
        """Whisper refuses prompt + max_new_tokens beyond its decoder's positions: cap it instead of failing."""
        limit = getattr(self.model.config, "max_target_positions", None)
        wanted = self.gen_kwargs.get("max_new_tokens")
        if limit and wanted and wanted > limit - PROMPT_TOKENS:
            logger.info("max_new_tokens %d capped to %d (this Whisper's decoder length)", wanted, limit - PROMPT_TOKENS)
            self.gen_kwargs["max_new_tokens"] = limit - PROMPT_TOKENS

    def compile(self, mode: str) -> None:
        use_repo_compile_cache()
        # A static cache keeps the decoder's shapes fixed, so the compiled graph is reused for every token.
        self.model.generation_config.cache_implementation = "static"
        self.model.forward = torch.compile(self.model.forward, mode=mode, fullgraph=True)
        self.warmup_runs = 2  # the first call compiles; 'reduce-overhead' records its CUDA graphs on the second
        logger.info("compiling Whisper (mode %s); the first start takes a while, later ones reuse the cache", mode)

    @property
    def chooser(self) -> LanguageChooser | None:
        """The last good language is each conversation's own: one user's French does not become another's."""
        return self.conversation_state("language", LanguageChooser) if self.detects_language else None

    def warmup(self) -> None:
        super().warmup()

    def transcribe(self, audio: np.ndarray) -> tuple[str, str | None]:
        features = self.processor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        features = features.to(self.device, self.dtype)
        if not self.multilingual:
            return self.decode(self.model.generate(features, **self.gen_kwargs)), "en"
        if self.chooser is None:
            language = self.config.language
            ids = self.model.generate(features, language=language, task="transcribe", **self.gen_kwargs)
            return self.decode(ids), language
        # Detect first, on encoder states computed once: an unsupported detection costs no wasted decode,
        # the transcript is made in the last good language instead.
        encoder_outputs = self.model.get_encoder()(features)
        detected = self.detect_language(encoder_outputs)
        language = self.chooser.choose(detected)
        ids = self.model.generate(encoder_outputs=encoder_outputs, language=language, task="transcribe", **self.gen_kwargs)
        return self.decode(ids), language

    def detect_language(self, encoder_outputs) -> str:
        lang_id = int(self.model.detect_language(encoder_outputs=encoder_outputs)[0])
        return self.id_to_language[lang_id]
