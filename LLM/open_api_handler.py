"""Language model behind any OpenAI-compatible chat server, streamed.

The whole conversation goes with every request (system prompt, history, question): the server keeps no
state. A server that is down or refuses a request drops that turn with one log line; the next turn tries again.
"""
from __future__ import annotations

import logging
import os

import openai

from LLM.base import BackendError, LLMHandler
from utils.pipeline.messages import ToolCall

logger = logging.getLogger(__name__)

PLACEHOLDER_KEY = "not-needed"  # the client insists on a key; local servers ignore it
MAX_RETRIES = 1  # the client's own backoff: one retry rides out a blip without stalling a spoken turn


class OpenApiLanguageModelHandler(LLMHandler):
    supports_tools = True  # the server decides whether its model calls them

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

    def stream(self, messages, tools=None, **overrides):
        kwargs = {**self.config.gen_kwargs, **overrides}
        if tools:
            kwargs["tools"] = tools
        calls: dict[int, dict] = {}  # by index: a call's id and name come first, its arguments in pieces
        try:
            response = self.client.chat.completions.create(
                model=self.model_name(), messages=messages, stream=True, **kwargs
            )
            for chunk in response:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    yield delta.content
                for part in delta.tool_calls or []:
                    call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] = part.id or call["id"]
                    if part.function is not None:
                        call["name"] = part.function.name or call["name"]
                        call["arguments"] += part.function.arguments or ""
            for index, call in sorted(calls.items()):
                yield ToolCall(call["id"] or f"call_{index}", call["name"], call["arguments"] or "{}")
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
