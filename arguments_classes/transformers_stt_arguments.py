from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import PositiveInt


@dataclass
class TransformersSTTHandlerArguments:
    """Fields of the Whisper-family STT backends (whisper, moonshine: transformers; whisper-mlx: MLX); model name,
    device, language, beam size and temperature are in STTArguments. One class for all three: HfArgumentParser
    allows each flag name once."""

    stt_torch_dtype: str = field(
        default="auto", metadata={"help": "float32, float16 or bfloat16; 'auto': float16 on cuda/mps (whisper-mlx: on the Apple GPU), float32 on cpu."}
    )
    stt_compile_mode: Optional[str] = field(
        default=None,
        metadata={"help": "whisper only: torch.compile the model with a static cache ('default', 'reduce-overhead', 'max-autotune'); kernels cache in ./cache/torchinductor."},
    )
    stt_gen_max_new_tokens: PositiveInt = field(default=128, metadata={"help": "Longest transcript, in tokens (moonshine also caps it by the audio's length)."})
