from dataclasses import dataclass, field


@dataclass
class HibariTTSHandlerArguments:
    """hibari's own fields; model file and device are in TTSArguments."""

    tts_voice: str = field(default="heart", metadata={"help": "hibari voice; 'heart' ships in the package (others download once)."})
    tts_speed: float = field(default=1.0, metadata={"help": "Speaking rate, 0.5 to 2.0."})
    tts_threads: int = field(default=1, metadata={"help": "onnxruntime threads."})
    tts_blocksize: int = field(default=512, metadata={"help": "Samples per audio block sent (512 at 16 kHz = 32 ms)."})
