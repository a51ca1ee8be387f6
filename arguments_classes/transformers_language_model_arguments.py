from dataclasses import dataclass, field


@dataclass
class TransformersLanguageModelHandlerArguments:
    """transformers' own fields; model (a directory, a hub name or a .gguf file; default: the bundled
    SmolLM2 GGUF, converted once into cache/), device, chat and common generation options are in LLMArguments."""

    lm_torch_dtype: str = field(
        default="float32", metadata={"help": "torch dtype of the weights: float32, bfloat16, float16 or auto (the checkpoint's own)."}
    )
