from dataclasses import dataclass, field
from typing import Annotated

from arguments_classes.validation import PositiveInt, Range


@dataclass
class HibariTTSHandlerArguments:
    """hibari's own fields; model file, device and block size are in TTSArguments."""

    tts_voice: str = field(default="heart", metadata={"help": "hibari voice; 'heart' ships in the package (others download once)."})
    tts_speed: Annotated[float, Range(0.5, 2.0)] = field(default=1.0, metadata={"help": "Speaking rate, 0.5 to 2.0."})
    tts_threads: PositiveInt = field(default=1, metadata={"help": "onnxruntime threads."})
