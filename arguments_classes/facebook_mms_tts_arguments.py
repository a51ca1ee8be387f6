from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import NonNegativeFloat, PositiveFloat


@dataclass
class FacebookMMSTTSHandlerArguments:
    """MMS (VITS) sampling options, set on the model before each sentence; None keeps the model's own.
    --tts_model_name may hold '{lang}', replaced by the ISO 639-3 code (default: facebook/mms-tts-{lang})."""

    tts_gen_speaking_rate: Optional[PositiveFloat] = field(default=None, metadata={"help": "MMS: speaking rate (2.0 is twice as fast)."})
    tts_gen_noise_scale: Optional[NonNegativeFloat] = field(default=None, metadata={"help": "MMS: sampling noise of the voice (model default 0.667)."})
    tts_gen_noise_scale_duration: Optional[NonNegativeFloat] = field(default=None, metadata={"help": "MMS: sampling noise of durations (model default 0.8)."})
