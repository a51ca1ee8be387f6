"""Fields every backend of a stage shares (HfArgumentParser allows each flag name once)."""
from dataclasses import dataclass, field
from typing import Annotated, Optional

from arguments_classes.validation import NonNegativeFloat, NonNegativeInt, PositiveInt, Range

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful and friendly voice assistant. Answer in one or two short spoken sentences, "
    "without lists, markdown or emoji."
)


@dataclass
class STTArguments:
    stt_model_name: Optional[str] = field(
        default=None, metadata={"help": "Model directory or hub name for the chosen STT backend; default: the backend's own (faster-whisper: tiny.en bundled, offline; whisper: openai/whisper-small; moonshine: UsefulSensors/moonshine-base, both need the hub or its cache; open_api: whisper-1)."}
    )
    stt_device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda', 'mps' or 'auto'."})
    language: str = field(default="en", metadata={"help": "Language code of the user's speech, or 'auto' to detect it."})
    # Decoding options every STT backend has, named as faster-whisper names them; the transformers handlers
    # map them (beam_size -> num_beams; temperature > 0 -> sampling). Options one backend has stay in its class.
    stt_gen_beam_size: PositiveInt = field(default=1, metadata={"help": "Beam size (1 is greedy and fastest)."})
    stt_gen_temperature: NonNegativeFloat = field(default=0.0, metadata={"help": "Sampling temperature for decoding (0 is greedy)."})


@dataclass
class LLMArguments:
    lm_model_name: Optional[str] = field(
        default=None, metadata={"help": "Model file, directory or name for the chosen LLM backend; default: SmolLM2-135M-Instruct bundled, offline."}
    )
    lm_device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda' or 'mps'."})
    init_chat_role: str = field(default="system", metadata={"help": "Role of the first chat message."})
    init_chat_prompt: str = field(default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "The system prompt."})
    chat_size: NonNegativeInt = field(
        default=1, metadata={"help": "How many past exchanges (user + assistant) the model sees at most; when more, the "
                                     "oldest half is dropped at once (the model's read prompt stays valid in between). "
                                     "1: the bundled SmolLM2-135M answers more questions right late in a conversation "
                                     "with one than with two or four (benchmarks/answers.py); larger models want more."}
    )
    history_format: str = field(
        default="system",
        metadata={"help": "'system': past exchanges written into the system prompt (small models then answer the new "
                          "question instead of continuing old ones); 'messages': as chat messages."},
    )
    # Generation options every LLM backend has. Named as 3 of the 4 APIs name them (llama.cpp, OpenAI, mlx-lm:
    # max_tokens); transformers' handler maps max_tokens to max_new_tokens. Options only one backend has
    # live in that backend's class, named as its API names them.
    lm_gen_max_tokens: PositiveInt = field(default=96, metadata={"help": "Longest reply, in tokens."})
    lm_gen_temperature: NonNegativeFloat = field(default=0.0, metadata={"help": "Sampling temperature (0 is greedy)."})


@dataclass
class TTSArguments:
    tts_model_name: Optional[str] = field(default=None, metadata={"help": "Model file, directory or name for the chosen TTS backend; default: the backend's own."})
    tts_device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda' or 'mps'; parler, melo, facebook-mms, chat-tts (hibari runs on the CPU; open_api on its server)."})
    tts_torch_dtype: str = field(default="float32", metadata={"help": "torch backends (parler, facebook-mms): float32, float16 or bfloat16."})
    tts_language: str = field(default="en", metadata={"help": "parler, melo, facebook-mms: the voice's language when a sentence carries none (the STT's language picks the voice otherwise); hibari and open_api have one voice (--tts_voice) whatever the language."})
    tts_blocksize: PositiveInt = field(default=512, metadata={"help": "Samples per audio block sent (512 at 16 kHz = 32 ms)."})
    # hibari and open_api both have a named voice and a speaking rate.
    tts_voice: Optional[str] = field(
        default=None, metadata={"help": "hibari, open_api: the voice; default: the backend's own (hibari: 'heart', in the package; open_api: 'alloy')."}
    )
    tts_speed: Annotated[float, Range(0.5, 2.0)] = field(default=1.0, metadata={"help": "hibari, open_api: speaking rate, 0.5 to 2.0."})
