"""Language model on transformers: chat template, generation in a thread, text streamed as it decodes."""
from __future__ import annotations

import logging
import threading
import time

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from LLM.base import LLMHandler
from LLM.bundled_model import transformers_model_source
from utils.dtypes import torch_dtype
from utils.errors import ConfigError, cannot_load

logger = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 10.0  # a stopped generation ends after its current token


class _StopOnEvent(StoppingCriteria):
    """Ends generate() when the consumer has gone (turn cancelled, or the reply generator closed)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def generate_kwargs(gen_kwargs: dict) -> dict:
    """The common options (named as llama.cpp/OpenAI name them) in generate()'s words; the rest as given."""
    kwargs = dict(gen_kwargs)
    if "max_tokens" in kwargs:
        kwargs["max_new_tokens"] = kwargs.pop("max_tokens")
    temperature = kwargs.pop("temperature", None)
    if temperature:  # 0 or None: greedy, and no sampling options to warn about
        kwargs.setdefault("do_sample", True)
        kwargs["temperature"] = temperature
    else:
        kwargs.setdefault("do_sample", False)
    return kwargs


def load(model_name: str | None, dtype: str, device: str):
    """(model, tokenizer) from a directory, a hub name or a GGUF file (default: the bundled one)."""
    resolved = torch_dtype(dtype, "--lm_torch_dtype", auto="auto")  # auto: the checkpoint's own dtype
    source = transformers_model_source(model_name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=resolved)
    except (OSError, ValueError) as e:  # not found (hub unreachable offline), or not a causal LM
        raise cannot_load("language model", source, e, "with transformers") from e
    if not tokenizer.chat_template:
        raise ConfigError(f"language model '{source}' has no chat template: use an instruct/chat model")
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as e:  # e.g. cuda asked for on a CPU-only torch
        raise ConfigError(f"cannot move the language model to device '{device}': {e}") from e
    return model.eval(), tokenizer


class TransformersLanguageModelHandler(LLMHandler):
    def setup(self, config, model=None) -> None:
        """`model`: a ready (model, tokenizer) pair, for tests; otherwise loaded from the config."""
        self.config = config
        self.setup_chat(config)
        started = time.monotonic()
        self.model, self.tokenizer = model if model is not None else load(config.model_name, config.torch_dtype, config.device)
        logger.info("transformers model loaded in %.1f s", time.monotonic() - started)
        self.gen_kwargs = generate_kwargs(config.gen_kwargs)
        self.warmup(max_new_tokens=2)


    def stream(self, messages, **overrides):
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        kwargs = {**self.gen_kwargs, **overrides}
        kwargs["stopping_criteria"] = StoppingCriteriaList([*kwargs.get("stopping_criteria", []), _StopOnEvent(stop)])
        pad = self.tokenizer.pad_token_id
        kwargs.setdefault("pad_token_id", self.tokenizer.eos_token_id if pad is None else pad)
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._generate, args=(inputs, streamer, kwargs, failure), name=f"{self.name}-generate", daemon=True
        )
        thread.start()
        try:
            for text in streamer:
                if text:
                    yield text
        finally:
            stop.set()  # the consumer may have stopped early: let generate() end
            thread.join(JOIN_TIMEOUT_S)
        if failure:
            raise failure[0]

    def _generate(self, inputs, streamer, kwargs, failure: list) -> None:
        try:
            with torch.inference_mode():
                self.model.generate(**inputs, streamer=streamer, **kwargs)
        except BaseException as e:  # raised again in the consumer's thread, where the turn is handled
            failure.append(e)
            streamer.end()  # unblocks the consumer, which would otherwise wait for text forever
