"""Starts one thread per handler and stops them all within a bound."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 5.0


class ThreadManager:
    def __init__(self, handlers, stop_event: threading.Event, queues=()) -> None:
        self.handlers = list(handlers)
        self.stop_event = stop_event
        self.queues = list(queues)
        self.threads: list[threading.Thread] = []

    def start(self, ready_timeout: float = READY_TIMEOUT_S) -> None:
        """Start every handler's thread, then wait (at most `ready_timeout`) for those that say when they can take
        input (a `ready` event: the microphone's first block), so that "ready" means it."""
        for handler in self.handlers:
            name = getattr(handler, "name", type(handler).__name__)
            thread = threading.Thread(target=handler.run, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)
        deadline = time.monotonic() + ready_timeout
        for handler in self.handlers:
            ready = getattr(handler, "ready", None)
            if isinstance(ready, threading.Event) and not ready.wait(max(0.0, deadline - time.monotonic())):
                logger.warning("%s is not delivering audio yet", getattr(handler, "name", type(handler).__name__))

    def stop(self, timeout: float = 1.5) -> list[str]:
        """Set the stop event and join every thread; returns the names of threads still alive."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        if alive:
            # Daemon threads die with the process; a model call (e.g. a long LLM step) cannot be interrupted.
            logger.warning("threads still busy at shutdown: %s", ", ".join(alive))
        return alive

    def any_alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)
