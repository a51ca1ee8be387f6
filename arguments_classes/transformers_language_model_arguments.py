from dataclasses import dataclass, field

from arguments_classes.validation import NonNegativeInt


@dataclass
class TransformersLanguageModelHandlerArguments:
    """transformers' own fields; model (a directory, a hub name or a .gguf file; default: the bundled
    SmolLM2 GGUF, converted once into cache/), device, chat and common generation options are in LLMArguments."""

    lm_torch_dtype: str = field(
        default="float32", metadata={"help": "torch dtype of the weights: float32, bfloat16, float16 or auto (the checkpoint's own)."}
    )
    lm_gen_min_new_tokens: NonNegativeInt = field(
        default=0, metadata={"help": "transformers: shortest reply, in tokens (generate()'s min_new_tokens; 0: no minimum)."}
    )
