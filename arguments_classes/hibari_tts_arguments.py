from dataclasses import dataclass, field


@dataclass
class HibariTTSHandlerArguments:
    """hibari's own fields; model file, device and block size are in TTSArguments."""

    tts_voice: str = field(default="heart", metadata={"help": "hibari voice; 'heart' ships in the package (others download once)."})
    tts_speed: float = field(default=1.0, metadata={"help": "Speaking rate, 0.5 to 2.0."})
    tts_threads: int = field(default=1, metadata={"help": "onnxruntime threads."})
