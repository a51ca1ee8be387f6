from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import PositiveInt


@dataclass
class MLXLanguageModelHandlerArguments:
    """mlx-lm's own fields. The model (an MLX/transformers directory, a hub name, or a .gguf file, default:
    the bundled SmolLM2 GGUF converted once into cache/), chat and common generation options are in
    LLMArguments. MLX runs on its default device (the GPU on Apple silicon, the CPU elsewhere)."""

    lm_gen_max_kv_size: Optional[PositiveInt] = field(
        default=None, metadata={"help": "mlx-lm: keep at most this many tokens of context (a rotating cache); default: all."}
    )
