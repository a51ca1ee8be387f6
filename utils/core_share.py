"""The second core: the language model decodes on it too while no other stage computes.

On 2 cores llama.cpp writes a token in ~13 ms on two threads and ~22 on one, but a second thread that shares its
core with Smart Turn, Whisper or the voice stalls each barrier of the model's graph: a token that Smart Turn started
beside took 60-78 ms. So a stage that is about to compute waits for the token under way to end (at most a token,
~15 ms), and the model decodes its next tokens on one thread until no stage computes (LLM/llama_cpp_handler.py).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

WAIT_S = 0.05  # never longer than this for a token to end (a stalled one)


class CoreShare:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._computing = 0  # stages computing (or waiting to)
        self._model_on_both = False  # the model is writing a token on both cores

    @contextmanager
    def computing(self) -> Iterator[None]:
        """Around a stage's own computation (not its waits: a voice blocked on a full queue leaves the core free)."""
        with self._changed:
            self._computing += 1
            self._changed.wait_for(lambda: not self._model_on_both, timeout=WAIT_S)
        try:
            yield
        finally:
            with self._changed:
                self._computing -= 1

    def both_cores(self, wanted: bool) -> bool:
        """The model, before each token: True if it may write it on both cores (`wanted`, and no stage computes)."""
        with self._changed:
            self._model_on_both = wanted and self._computing == 0
            if not self._model_on_both:
                self._changed.notify_all()
            return self._model_on_both


CORES = CoreShare()  # one per process, as the cores are
