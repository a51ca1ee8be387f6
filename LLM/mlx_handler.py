"""Language model on Apple MLX (mlx-lm), token streaming. Also runs on Linux CPUs with `mlx[cpu]`."""
from __future__ import annotations

import json
import logging
import os
import time

from mlx_lm import load, stream_generate
from mlx_lm.sample_utils import make_sampler

from LLM.base import LLMHandler
from LLM.bundled_model import transformers_model_source
from utils.errors import cannot_load

logger = logging.getLogger(__name__)


def transformers5_overrides(model_dir: str) -> dict:
    """transformers 5 saves `rope_parameters`; mlx-lm reads `rope_theta`/`rope_scaling` and would
    silently fall back to theta 10000 (fluent nonsense). Hand it the values under its own names."""
    try:
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
            config = json.load(f)
    except OSError:  # a hub name, or a directory mlx-lm will complain about itself
        return {}
    rope = config.get("rope_parameters")
    if not isinstance(rope, dict) or "rope_theta" in config or "rope_theta" not in rope:
        return {}
    overrides = {"rope_theta": rope["rope_theta"]}
    if rope.get("rope_type", "default") != "default":
        overrides["rope_scaling"] = {k: v for k, v in rope.items() if k != "rope_theta"}
    return overrides


def sampling_kwargs(gen_kwargs: dict) -> dict:
    """The common options in stream_generate()'s words: temperature becomes a sampler; unset options go."""
    kwargs = {k: v for k, v in gen_kwargs.items() if v is not None}
    kwargs["sampler"] = make_sampler(temp=kwargs.pop("temperature", 0.0) or 0.0)
    return kwargs


class MLXLanguageModelHandler(LLMHandler):
    def setup(self, config, model=None) -> None:
        """`model`: a ready (model, tokenizer) pair, for tests."""
        self.config = config
        self.setup_chat(config)
        started = time.monotonic()
        if model is None:
            source = transformers_model_source(config.model_name)
            try:
                model = load(source, model_config=transformers5_overrides(source))
            except Exception as e:  # mlx-lm raises bare ValueError/FileNotFoundError/hub errors
                raise cannot_load("language model", source, e, "with mlx-lm") from e
        self.model, self.tokenizer = model
        logger.info("mlx-lm model loaded in %.1f s", time.monotonic() - started)
        self.gen_kwargs = sampling_kwargs(config.gen_kwargs)
        self.warmup(max_tokens=2)


    def stream(self, messages, **overrides):
        prompt = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        for response in stream_generate(self.model, self.tokenizer, prompt, **{**self.gen_kwargs, **overrides}):
            if response.text:
                yield response.text
