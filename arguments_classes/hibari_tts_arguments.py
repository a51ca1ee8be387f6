from dataclasses import dataclass, field

from arguments_classes.validation import PositiveInt


@dataclass
class HibariTTSHandlerArguments:
    """hibari's own fields; model file, device, block size, voice and speed are in TTSArguments."""

    tts_threads: PositiveInt = field(default=1, metadata={"help": "onnxruntime threads."})
