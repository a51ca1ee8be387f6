"""Speech to text with Paraformer (FunASR): a non-autoregressive Mandarin model, read from a directory or from
ModelScope (paraformer-zh by default; FunASR knows the hub names). Its transcripts are tagged Chinese ('zh')."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import socket

import numpy as np
import torch

with contextlib.redirect_stdout(io.StringIO()):  # funasr prints ffmpeg advice on import; audio reaches it as arrays
    from funasr import AutoModel

from STT.base import STTHandler
from STT.transformers_stt import resolve_device
from utils.audio import SAMPLE_RATE
from utils.errors import ConfigError, cannot_load

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "paraformer-zh"
LANGUAGE = "zh"
PROBE_TIMEOUT_S = 3.0
# Paraformer puts a space between tokens: none belongs between two Chinese characters (English words keep theirs).
SPACE_BETWEEN_HAN = re.compile(r"(?<=[\u3400-\u9fff]) +(?=[\u3400-\u9fff])")


def modelscope_reachable() -> bool:
    host = os.environ.get("MODELSCOPE_DOMAIN", "www.modelscope.cn").split("://")[-1].split("/")[0]
    try:
        with socket.create_connection((host, 443), PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def cached_model(name: str) -> str | None:
    """The directory ModelScope keeps `name` in, if it was downloaded before."""
    from funasr.download.name_maps_from_hub import name_maps_ms
    from modelscope.hub.snapshot_download import snapshot_download

    try:
        return snapshot_download(name_maps_ms.get(name, name), local_files_only=True)
    except Exception:  # not cached (modelscope raises ValueError or its own errors)
        return None


def model_source(name: str) -> str:
    """A directory, or a hub name while ModelScope answers; one line otherwise (FunASR retries for ~20 s, then
    fails with an unrelated message)."""
    if os.path.isdir(os.path.expanduser(name)):
        return os.path.expanduser(name)
    if name.startswith((".", "/", "~")):
        raise ConfigError(f"Paraformer model directory not found: {name}")
    if modelscope_reachable():
        return name
    cached = cached_model(name)
    if cached is None:
        raise ConfigError(f"Paraformer model '{name}' is not a local directory nor in the ModelScope cache, and ModelScope "
                          "is unreachable: pass --stt_model_name <directory with config.yaml, model.pt, tokens.json>")
    return cached


def tidy(text: str) -> str:
    return SPACE_BETWEEN_HAN.sub("", text).strip()


class ParaformerSTTHandler(STTHandler):
    """SpeechSegment in, Transcript out. `model`: a ready funasr AutoModel, for tests."""

    punctuates = False  # plain words, no punctuation: the transcript says nothing about the end of a turn

    def setup(self, config, model=None) -> None:
        self.config = config
        if config.gen_kwargs.get("beam_size", 1) != 1 or config.gen_kwargs.get("temperature", 0.0) > 0:
            logger.warning("paraformer decodes all tokens at once: --stt_gen_beam_size and --stt_gen_temperature have no effect")
        if config.language not in (LANGUAGE, "auto", "en"):  # en: the stage's default, not a choice
            logger.warning("paraformer transcribes Mandarin: --language %s is ignored", config.language)
        self.model = model if model is not None else self.load(config.model_name or DEFAULT_MODEL)
        self.warmup()

    def load(self, name: str):
        source = model_source(name)
        try:
            # ncpu: FunASR sets torch's thread count, which the other stages share, to this; keep it as it is.
            return AutoModel(model=source, device=resolve_device(self.config.device), ncpu=torch.get_num_threads(),
                             disable_update=True, disable_pbar=True, disable_log=True, check_latest=False)
        except Exception as e:  # missing files, a directory of another model type, hub errors
            raise cannot_load("Paraformer model", name, e) from e

    def warmup(self) -> None:
        self.recognize(np.zeros(SAMPLE_RATE, dtype=np.float32))

    def recognize(self, audio: np.ndarray) -> tuple[str, str | None]:
        results = self.model.generate(input=audio, disable_pbar=True)
        return tidy(" ".join(r.get("text", "") for r in results)), LANGUAGE
