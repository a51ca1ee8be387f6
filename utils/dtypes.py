"""--stt_torch_dtype, --lm_torch_dtype, --tts_torch_dtype: a dtype's name to the dtype, one way for every stage."""

from __future__ import annotations

from typing import Any

from utils.errors import ConfigError

TORCH_DTYPES = ("float32", "float16", "bfloat16")


def choose_dtype(name: str, flag: str, choices: dict[str, Any]) -> Any:
    """choices[name], or a one-line ConfigError naming the choices."""
    try:
        return choices[name]
    except KeyError:
        raise ConfigError(f"unknown {flag} '{name}'; choose {', '.join(choices)}") from None


def torch_dtype(name: str, flag: str, auto: Any = None) -> Any:
    """'float16' -> torch.float16. 'auto' is accepted only where the stage says what it means (`auto`): the STT
    backends take half precision on a GPU, the transformers language model the checkpoint's own dtype; TTS has none."""
    import torch

    choices = {"auto": auto} if auto is not None else {}
    return choose_dtype(name, flag, {**choices, **{n: getattr(torch, n) for n in TORCH_DTYPES}})
