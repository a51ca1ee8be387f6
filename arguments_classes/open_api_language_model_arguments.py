from dataclasses import dataclass, field
from typing import Optional

from arguments_classes.validation import PositiveFloat


@dataclass
class OpenApiLanguageModelHandlerArguments:
    """Any OpenAI-compatible chat server (OpenAI, llama.cpp's server, vLLM, Ollama...). System prompt,
    history and the common generation options are in LLMArguments."""

    open_api_base_url: str = field(
        default="http://127.0.0.1:8000/v1", metadata={"help": "The server's API root, ending in /v1."}
    )
    open_api_api_key: Optional[str] = field(
        default=None, metadata={"help": "API key; default: $OPENAI_API_KEY, or a placeholder (local servers ignore it)."}
    )
    open_api_model_name: Optional[str] = field(
        default=None, metadata={"help": "Model name the server knows; default: --lm_model_name, else the first model the server lists."}
    )
    open_api_timeout: PositiveFloat = field(default=30.0, metadata={"help": "Seconds to wait for the server before dropping the turn."})
