from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import NonNegativeInt, PositiveFloat, PositiveInt


@dataclass
class ParlerTTSHandlerArguments:
    """Parler-TTS's own fields, named as in the reference project; model, device, dtype, language and block
    size are in TTSArguments."""

    tts_compile_mode: Optional[str] = field(
        default=None, metadata={"help": "torch.compile the decoder ('default'; other modes fall back to it). Prompts are then padded to a power of two."}
    )
    tts_gen_min_new_tokens: NonNegativeInt = field(default=64, metadata={"help": "Fewest audio frames to generate per sentence (86 frames = 1 s)."})
    tts_gen_max_new_tokens: PositiveInt = field(default=1024, metadata={"help": "Most audio frames to generate per sentence (1024 = ~12 s)."})
    description: str = field(
        default="Jenny speaks at a slightly slow pace with an animated delivery with clear audio quality.",
        metadata={"help": "The voice, described in words.", "aliases": ["--tts_description"]},
    )
    play_steps_s: PositiveFloat = field(default=0.4, metadata={"help": "Seconds of audio generated between two streamed pieces."})
    max_prompt_pad_length: PositiveInt = field(
        default=8, metadata={"help": "With --tts_compile_mode: warm up prompt lengths 4 ... 2**(this - 1) tokens."}
    )
    use_default_speakers_list: bool = field(
        default=False, metadata={"help": "Name a speaker per language (en: Jason, fr: Christine...) in the description; for multi-speaker models."}
    )
