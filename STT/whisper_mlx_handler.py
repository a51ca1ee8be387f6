"""Speech to text with MLX Whisper (mlx-whisper): Apple silicon's GPU, or the CPU elsewhere (`mlx[cpu]` on Linux).

Whisper's own decoding (mlx_whisper.decoding) on the 30-second windows Whisper reads. With `--language auto` the
language is detected once per utterance, on encoder states computed once, and an unsupported detection is
transcribed in the last good language (as --stt whisper does)."""
from __future__ import annotations

import logging
from dataclasses import replace

import mlx.core as mx
import numpy as np
from mlx_whisper import decoding
from mlx_whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram, pad_or_trim
from mlx_whisper.load_models import load_model
from mlx_whisper.tokenizer import LANGUAGES, get_tokenizer

from STT.base import STTHandler
from STT.language_choice import LanguageChooser
from utils.audio import SAMPLE_RATE
from utils.dtypes import choose_dtype
from utils.errors import ConfigError, cannot_load
from utils.hub import model_directory

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "mlx-community/whisper-large-v3-turbo"


def resolve_dtype(name: str):
    """MLX's dtypes, not torch's: mlx-whisper decodes in float32 or float16 (no bfloat16). auto: half precision on the
    Apple GPU; MLX's CPU kernels are fastest (and exact) in float32."""
    auto = mx.float16 if mx.default_device().type == mx.gpu else mx.float32
    return choose_dtype(name, "--stt_torch_dtype", {"auto": auto, "float32": mx.float32, "float16": mx.float16})


def decoding_options(gen_kwargs: dict, dtype) -> decoding.DecodingOptions:
    """The stage's generation options (faster-whisper's names) in mlx-whisper's DecodingOptions."""
    if gen_kwargs.get("beam_size", 1) != 1:
        raise ConfigError("whisper-mlx decodes greedily (mlx-whisper has no beam search): use --stt_gen_beam_size 1")
    return decoding.DecodingOptions(
        task="transcribe", temperature=gen_kwargs.get("temperature", 0.0), sample_len=gen_kwargs.get("max_new_tokens"),
        without_timestamps=True, fp16=dtype == mx.float16,
    )


class WhisperMLXSTTHandler(STTHandler):
    """SpeechSegment in, Transcript out. `model`: a loaded mlx_whisper Whisper, for tests."""

    def setup(self, config, model=None) -> None:
        self.config = config
        if config.compile_mode:
            raise ConfigError("--stt_compile_mode applies to --stt whisper only")
        self.dtype = resolve_dtype(config.torch_dtype)
        self.options = decoding_options(config.gen_kwargs, self.dtype)
        if model is None:
            model = self.load(config.model_name or DEFAULT_MODEL)
        self.model = model
        self.language = self.fixed_language(config.language)
        self.detects_language = self.language is None
        # detect_language needs a tokenizer that has language tokens: any language will do
        self.tokenizer = get_tokenizer(model.is_multilingual, num_languages=model.num_languages, language="en")
        self.warmup()

    def load(self, name: str):
        try:
            return load_model(model_directory(name, "Whisper MLX model", "--stt_model_name"), dtype=self.dtype)
        except ConfigError:
            raise
        except Exception as e:  # missing files, a directory of another model type, hub errors
            raise cannot_load("Whisper MLX model", name, e) from e

    def fixed_language(self, language: str) -> str | None:
        """The language to transcribe in; None: detect it per utterance."""
        if not self.model.is_multilingual:
            if language not in ("en", "auto"):
                raise ConfigError(f"this Whisper model is English-only; --language {language} needs a multilingual one")
            return "en"
        if language == "auto":
            return None
        if language not in LANGUAGES:
            raise ConfigError(f"Whisper does not know --language '{language}'; give a code such as en, fr, de, or auto")
        return language

    @property
    def chooser(self) -> LanguageChooser | None:
        """The last good language is each conversation's own: one user's French does not become another's."""
        return self.conversation_state("language", LanguageChooser) if self.detects_language else None

    def warmup(self) -> None:
        """The first call builds MLX's kernels: pay for it at start-up, not on the first question."""
        self.recognize(np.zeros(SAMPLE_RATE, dtype=np.float32))

    def recognize(self, audio: np.ndarray) -> tuple[str, str | None]:
        mel = log_mel_spectrogram(audio, n_mels=self.model.dims.n_mels, padding=N_SAMPLES)
        content_frames = mel.shape[-2] - N_FRAMES
        texts, language = [], self.language
        for start in range(0, max(content_frames, 1), N_FRAMES):  # an utterance longer than 30 s: window by window
            window = pad_or_trim(mel[start:start + N_FRAMES], N_FRAMES, axis=-2).astype(self.dtype)
            features = self.model.encoder(window[None])
            if language is None:
                language = self.detect_language(features)
            result = decoding.decode(self.model, features[0], replace(self.options, language=language))
            texts.append(result.text.strip())
        return " ".join(t for t in texts if t), language

    def detect_language(self, features) -> str:
        _, probabilities = decoding.detect_language(self.model, features, self.tokenizer)
        detected = max(probabilities[0], key=probabilities[0].get)
        return self.chooser.choose(detected)
