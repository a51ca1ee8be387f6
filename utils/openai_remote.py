"""One stage of one turn on an OpenAI-compatible server: the client, retries inside a deadline, failures as one line.

A 429 or a 5xx is retried with backoff (the server's Retry-After when it gives one) while the deadline allows;
a server that is down, a time-out, any other status or a broken stream ends the attempt at once. What cannot be
served raises RemoteStageError, whose text names the stage and the server: the handler logs it as one ERROR
line and drops the turn.

The requests run on a thread of their own (`in_background`): the stage's thread waits on a queue with a short
time-out, so a stop or a withdrawn turn is seen at once, however long the server takes.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Callable, Iterator, TypeVar

import openai

logger = logging.getLogger(__name__)

PLACEHOLDER_KEY = "not-needed"  # the client insists on a key; local servers ignore it
FIRST_BACKOFF_S = 0.25  # then doubled after each retry
MAX_BACKOFF_S = 4.0
MIN_ATTEMPT_S = 0.05  # an attempt is not started with less time than this left
POLL_S = 0.05  # how often a stage waiting on the server looks at its stop event

T = TypeVar("T")


class RemoteStageError(Exception):
    """The server could not serve this turn; the text is one line naming the stage and the server."""


class Abandoned(Exception):
    """The stage stopped waiting for the server: shutting down, or the turn was withdrawn. Nothing to report."""


def make_client(base_url: str, api_key: str | None, timeout_s: float) -> openai.OpenAI:
    """The SDK's client, without its own retries: RemoteCall retries inside the turn's deadline instead."""
    key = api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY
    return openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=0)


def retryable(error: openai.APIError) -> bool:
    return isinstance(error, openai.APIStatusError) and (error.status_code == 429 or error.status_code >= 500)


def retry_after_s(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: rare enough to fall back on our own backoff
        return None


class RemoteCall:
    """Calls `attempt(timeout_s)` until it succeeds, retrying 429 and 5xx with backoff while the deadline of
    `timeout_s` (from the first attempt) allows. `stop_event` ends the waiting between attempts at shutdown."""

    def __init__(self, stage: str, base_url: str, timeout_flag: str, timeout_s: float,
                 stop_event: threading.Event | None = None) -> None:
        self.stage, self.base_url, self.timeout_flag, self.timeout_s = stage, base_url, timeout_flag, timeout_s
        self.stop_event = stop_event or threading.Event()

    def __call__(self, attempt: Callable[[float], T], cancelled: Callable[[], bool] = lambda: False) -> T:
        deadline = time.monotonic() + self.timeout_s
        backoff, tries = FIRST_BACKOFF_S, 0
        while True:
            tries += 1
            try:
                return attempt(max(MIN_ATTEMPT_S, deadline - time.monotonic()))
            except openai.APIError as e:
                if not isinstance(e, openai.APIStatusError) or not retryable(e):
                    raise self.error(describe(e, self.timeout_s, self.timeout_flag), tries) from e
                asked = retry_after_s(e)
                wait = min(MAX_BACKOFF_S, backoff if asked is None else asked)
                if time.monotonic() + wait + MIN_ATTEMPT_S > deadline:
                    raise self.error(f"{describe(e)}; no time left to retry within {self.timeout_s:g} s "
                                     f"({self.timeout_flag})", tries) from e
                logger.info("%s server %s answered %d; retrying in %.2f s", self.stage, self.base_url, e.status_code, wait)
                if self.stop_event.wait(wait) or cancelled():
                    raise Abandoned() from e
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            except ValueError as e:  # a body that is not the API's (not JSON, wrong fields): the SDK does not wrap it
                raise self.error(f"answered something else than the API's answer ({type(e).__name__}: "
                                 f"{' '.join(str(e).split())[:120]})", tries) from e

    def error(self, what: str, tries: int = 1) -> RemoteStageError:
        after = f" (after {tries} tries)" if tries > 1 else ""
        return RemoteStageError(f"{self.stage} server {self.base_url}: {what}{after}")


def describe(error: openai.APIError, timeout_s: float | None = None, timeout_flag: str = "") -> str:
    if isinstance(error, openai.APITimeoutError):
        return f"no answer within {timeout_s:g} s ({timeout_flag})" if timeout_s else "no answer in time"
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        return f"cannot connect ({type(cause).__name__}: {cause})"
    if isinstance(error, openai.APIStatusError):
        body = error.body if isinstance(error.body, dict) else {}
        message = " ".join(str(body.get("message") or error.message).split())[:200]
        return f"answered {error.status_code}: {message}"
    return " ".join(str(error).split())[:200]  # e.g. a body that is not what the API defines


def in_background(produce: Callable[[Callable[[], bool]], Iterator[T]], should_stop: Callable[[], bool],
                  name: str) -> Iterator[T]:
    """The items of `produce(abandoned)`, made on a thread of its own and yielded here as they come; an exception
    it raises is raised here. Once `should_stop()` is true (or this generator is closed) it ends within POLL_S, and
    `abandoned()` tells the producer to give up (close its response) at its next step."""
    items: queue.Queue = queue.Queue()
    abandoned = threading.Event()

    def run() -> None:
        try:
            for item in produce(abandoned.is_set):
                items.put((True, item))
                if abandoned.is_set():
                    return
            items.put((False, None))
        except BaseException as e:  # handed to the consumer, who reports it
            items.put((False, e))

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        while True:
            try:
                is_item, value = items.get(timeout=POLL_S)
            except queue.Empty:
                if should_stop():
                    raise Abandoned() from None
                continue
            if is_item:
                yield value
            elif value is None:
                return
            else:
                raise value
    finally:
        abandoned.set()
