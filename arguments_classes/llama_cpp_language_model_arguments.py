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
    lm_n_threads_alone: NonNegativeInt = field(
        default=2,
        metadata={"help": "CPU threads for generation while no other stage computes (Smart Turn, Whisper, the voice), "
                          "chosen again before each token: two write a token in ~13 ms here instead of ~22, but beside "
                          "another stage they stall. 0: always --lm_n_threads."},
    )
