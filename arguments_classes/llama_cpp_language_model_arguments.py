from dataclasses import dataclass, field


@dataclass
class LlamaCppLanguageModelHandlerArguments:
    """llama.cpp's own fields; model, device and chat settings are in LLMArguments."""

    lm_n_ctx: int = field(default=2048, metadata={"help": "Context window in tokens."})
    lm_n_threads: int = field(default=2, metadata={"help": "CPU threads for generation."})
    lm_gen_max_tokens: int = field(default=96, metadata={"help": "Longest reply, in tokens."})
    lm_gen_temperature: float = field(default=0.0, metadata={"help": "Sampling temperature (0 is greedy)."})
