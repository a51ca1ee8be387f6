from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import PositiveFloat


@dataclass
class OpenApiSTTHandlerArguments:
    """Any OpenAI-compatible transcription server (OpenAI, vLLM serving Whisper, faster-whisper servers...). The
    model is --stt_model_name (default whisper-1), the language --language; both are in STTArguments."""

    stt_base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={"help": "open_api STT: the server's API root, ending in /v1."})
    stt_api_key: Optional[str] = field(
        default=None, metadata={"help": "open_api STT: API key; default: $OPENAI_API_KEY, or a placeholder (local servers ignore it)."}
    )
    stt_timeout_s: PositiveFloat = field(
        default=10.0, metadata={"help": "open_api STT: seconds a transcription may take, retries of 429 and 5xx included, before the turn is dropped."}
    )
