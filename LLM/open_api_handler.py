"""Language model behind any OpenAI-compatible chat server, streamed.

The whole conversation goes with every request (system prompt, history, question): the server keeps no
state. A server that is down or refuses a request drops that turn with one log line; the next turn tries again.
"""
from __future__ import annotations

import logging
import os

import openai

from LLM.base import BackendError, LLMHandler

logger = logging.getLogger(__name__)

PLACEHOLDER_KEY = "not-needed"  # the client insists on a key; local servers ignore it
MAX_RETRIES = 1  # the client's own backoff: one retry rides out a blip without stalling a spoken turn


class OpenApiLanguageModelHandler(LLMHandler):
    def setup(self, config, model=None) -> None:
        """`model`: a ready openai.OpenAI client, for tests."""
        self.config = config
        self.setup_chat(config)
        self.client = model or openai.OpenAI(
            base_url=config.open_api_base_url,
            api_key=config.open_api_api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY,
            timeout=config.open_api_timeout,
            max_retries=MAX_RETRIES,
        )
        self._model_name = config.open_api_model_name or config.model_name
        try:
            logger.info("OpenAI-compatible server %s, model %s", config.open_api_base_url, self.model_name())
        except BackendError as e:  # the server may come up later: each turn tries again
            logger.warning("%s (will retry on each turn)", e)

    def model_name(self) -> str:
        if self._model_name is None:
            try:
                models = self.client.models.list().data
            except openai.APIError as e:
                raise BackendError(f"cannot list the models of {self.config.open_api_base_url}: {_describe(e)}") from e
            if not models:
                raise BackendError(f"{self.config.open_api_base_url} lists no model: pass --open_api_model_name")
            self._model_name = models[0].id
        return self._model_name

    def stream(self, messages, **overrides):
        kwargs = {**self.config.gen_kwargs, **overrides}
        try:
            response = self.client.chat.completions.create(
                model=self.model_name(), messages=messages, stream=True, **kwargs
            )
            for chunk in response:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except openai.APIError as e:
            raise BackendError(f"{self.config.open_api_base_url}: {_describe(e)}") from e


def _describe(error: openai.APIError) -> str:
    if isinstance(error, openai.APITimeoutError):
        return "no answer in time (--open_api_timeout)"
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        return f"cannot connect ({type(cause).__name__}: {cause})"
    if isinstance(error, openai.APIStatusError):
        return f"the server answered {error.status_code}: {error.message}"
    return str(error)
