from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import NonNegativeInt, PositiveFloat


@dataclass
class ChatTTSHandlerArguments:
    """ChatTTS's own fields; model directory (default: the hub's 2Noise/ChatTTS), device and block size are in
    TTSArguments."""

    tts_stream: bool = field(default=True, metadata={"help": "ChatTTS: send each sentence's audio while it is generated (false: once it is whole)."})
    tts_speaker_seed: NonNegativeInt = field(default=0, metadata={"help": "ChatTTS: seed of its random speaker; the same seed gives the same voice on every start."})
    tts_refine_text: bool = field(
        default=False, metadata={"help": "ChatTTS: let its GPT first add pauses and laughter to each sentence (a second model pass: slower)."}
    )
    tts_gen_temperature: Optional[PositiveFloat] = field(default=None, metadata={"help": "ChatTTS: sampling temperature of the audio codes (its default 0.3)."})
