from dataclasses import dataclass, field

from arguments_classes.validation import NonNegativeInt, PositiveInt


@dataclass
class LlamaCppLanguageModelHandlerArguments:
    """llama.cpp's own fields; model, device, chat settings and the common generation options are in LLMArguments."""

    lm_n_ctx: NonNegativeInt = field(default=2048, metadata={"help": "Context window in tokens."})
    lm_n_threads: PositiveInt = field(
        default=1,
        metadata={"help": "CPU threads for generation. On 2 cores, 1 decodes faster inside the pipeline than 2: the "
                          "other stages' threads stall llama.cpp's thread barrier (measured 170 vs 60 tokens/s)."},
    )
