"""Language model on llama.cpp (GGUF), token streaming."""
from __future__ import annotations

import logging
import os

from llama_cpp import Llama

from LLM.bundled_model import bundled_model_path
from LLM.streaming import StreamingLanguageModelHandler
from utils.errors import ConfigError

logger = logging.getLogger(__name__)


class LlamaCppLanguageModelHandler(StreamingLanguageModelHandler):
    def setup(self, config, model=None) -> None:
        self.config = config
        self.setup_chat(config)
        if model is None:
            path = config.model_name or bundled_model_path()
            if not os.path.isfile(path):
                raise ConfigError(f"GGUF model file not found: {path}")
            try:
                model = Llama(
                    model_path=path, n_ctx=config.n_ctx, n_threads=config.n_threads,
                    n_gpu_layers=-1 if config.device == "cuda" else 0, verbose=False,
                )
            except Exception as e:
                raise ConfigError(f"cannot load GGUF model '{path}': {e}") from e
        self.model = model
        self.warmup(max_tokens=2)


    def stream(self, messages, **overrides):
        kwargs = {**self.config.gen_kwargs, **overrides}
        for chunk in self.model.create_chat_completion(messages=messages, stream=True, **kwargs):
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                yield piece
