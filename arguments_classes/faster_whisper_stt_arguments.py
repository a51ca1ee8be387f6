from dataclasses import dataclass, field


@dataclass
class FasterWhisperSTTHandlerArguments:
    """faster-whisper's own fields; model name, device, language, beam size and temperature are in STTArguments."""

    stt_compute_type: str = field(default="int8", metadata={"help": "CTranslate2 compute type: int8, int8_float16, float16, float32."})
    stt_cpu_threads: int = field(default=2, metadata={"help": "CPU threads for Whisper."})
