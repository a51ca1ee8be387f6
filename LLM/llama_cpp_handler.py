"""Language model on llama.cpp (GGUF), token streaming."""
from __future__ import annotations

import logging
import os
import threading
from functools import partial

import llama_cpp
from llama_cpp import Llama

from LLM.base import LLMHandler
from LLM.bundled_model import bundled_model_path
from LLM.gguf_requantize import requantized
from LLM.llama_cpp_states import ConversationStates, restore, snapshot
from utils.core_share import CORES
from utils.errors import ConfigError

logger = logging.getLogger(__name__)


def on_a_passing_thread(work) -> None:
    """Run `work` on a thread of its own and wait for it (its exception is raised here).

    llama.cpp computes with OpenMP, and OpenMP keeps a pool of worker threads for every thread that has computed,
    for as long as that thread lives. Warmed up on the main thread, the model then answering on the handler's thread
    left two pools: more OpenMP threads than this 2-core machine has cores, and then OpenMP stops spinning at its
    barriers and sleeps at each of them. Reading a 13-token prompt took 80 ms instead of 38, and with two threads a
    token took 30 ms instead of 12. A thread that ends takes its pool with it."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as e:  # raised again on the caller's thread
            errors.append(e)

    thread = threading.Thread(target=run, name="llama-warmup")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


class LlamaCppLanguageModelHandler(LLMHandler):
    def setup(self, config, model=None) -> None:
        self.config = config
        self.setup_chat(config)
        if model is None:
            path = config.model_name or requantized(bundled_model_path())  # Q8_0: faster here than its Q4_1
            if not os.path.isfile(path):
                raise ConfigError(f"GGUF model file not found: {path}")
            try:
                model = Llama(
                    model_path=path, n_ctx=config.n_ctx, n_threads=config.n_threads,
                    n_gpu_layers=-1 if config.device == "cuda" else 0, verbose=False,
                )
            except Exception as e:
                raise ConfigError(f"cannot load GGUF model '{path}': {e}") from e
        self.model = model
        # llama.cpp's decode threads while no other stage computes: never more than the cores (utils/core_share.py)
        self._threads_alone = min(config.n_threads_alone, os.cpu_count() or 1) if isinstance(model, Llama) else 0
        self._threads: int | None = None  # what llama.cpp was last told
        self._voice_starts = False  # a sentence just went to the voice
        self.states = None  # each conversation's prompt kept aside, when the model can (not a test's fake)
        if isinstance(model, Llama):
            self.states = ConversationStates(partial(snapshot, model), partial(restore, model))
        elif hasattr(model, "snapshot") and hasattr(model, "restore"):
            self.states = ConversationStates(model.snapshot, model.restore)
        on_a_passing_thread(lambda: self.warmup(max_tokens=2))

    def before_reply(self, conversation) -> None:
        if self.states is not None:
            self.states.activate(conversation)

    def after_reply(self, chat) -> None:
        # Read the history as the next prompt will start (a trimmed start, a reply kept shorter than said,
        # the end-of-turn tokens) now, while the user listens: the next turn then reads only its question.
        if self.states is not None:
            self.prefill(chat.history())

    def prefill(self, history: list[dict]) -> None:
        """Read `history` into the context as the start of the next prompt (up to the next user message's
        text): the next turn then reads only its question."""
        for _ in self.model.create_chat_completion(messages=history + [{"role": "user", "content": ""}],
                                                   max_tokens=1, stream=True):
            pass

    def stream(self, messages, **overrides):
        kwargs = {**self.config.gen_kwargs, **overrides}
        self._threads = None
        self._decode_threads()
        try:
            for chunk in self.model.create_chat_completion(messages=messages, stream=True, **kwargs):
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
                self._decode_threads()
        finally:
            self._decode_threads(alone=False)

    def sentence_out(self) -> None:
        self._voice_starts = True

    def _decode_threads(self, alone: bool = True) -> None:
        """Before each token: both cores while no other stage computes (utils/core_share.py). Not for the token
        after a sentence went to the voice, which starts on it now."""
        if self._threads_alone <= self.config.n_threads:
            return
        alone = alone and not self._voice_starts
        self._voice_starts = False
        threads = self._threads_alone if CORES.both_cores(alone) else self.config.n_threads
        if threads != self._threads:
            llama_cpp.llama_set_n_threads(self.model._ctx.ctx, threads, self.model.n_threads_batch)
            self._threads = threads
