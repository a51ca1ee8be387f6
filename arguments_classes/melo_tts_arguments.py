from dataclasses import dataclass, field

from arguments_classes.validation import Fraction, NonNegativeFloat, PositiveFloat


@dataclass
class MeloTTSHandlerArguments:
    """MeloTTS's tts_to_file options. --tts_model_name may name a directory holding config.json and
    checkpoint.pth, with '{lang}' replaced by Melo's language (EN, FR...); default: Melo's own download."""

    tts_gen_speed: PositiveFloat = field(default=1.0, metadata={"help": "Melo: speaking speed."})
    tts_gen_sdp_ratio: Fraction = field(default=0.2, metadata={"help": "Melo: stochastic duration predictor ratio."})
    tts_gen_noise_scale_w: NonNegativeFloat = field(default=0.8, metadata={"help": "Melo: duration noise."})
