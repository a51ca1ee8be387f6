from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import PositiveFloat


@dataclass
class OpenApiTTSHandlerArguments:
    """Any OpenAI-compatible speech server (OpenAI, Kokoro-FastAPI, openedai-speech...). The model is
    --tts_model_name (default tts-1); voice, speed and block size are in TTSArguments."""

    tts_base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={"help": "open_api TTS: the server's API root, ending in /v1."})
    tts_api_key: Optional[str] = field(
        default=None, metadata={"help": "open_api TTS: API key; default: $OPENAI_API_KEY, or a placeholder (local servers ignore it)."}
    )
    tts_timeout_s: PositiveFloat = field(
        default=10.0,
        metadata={"help": "open_api TTS: seconds to wait for a sentence's first audio (retries of 429 and 5xx included) "
                          "and between two pieces of it, before the turn is dropped."},
    )
