"""Starts one thread per handler and stops them all within a bound."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)


class ThreadManager:
    def __init__(self, handlers, stop_event: threading.Event, queues=()) -> None:
        self.handlers = list(handlers)
        self.stop_event = stop_event
        self.queues = list(queues)
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for handler in self.handlers:
            name = getattr(handler, "name", type(handler).__name__)
            thread = threading.Thread(target=handler.run, name=name, daemon=True)
            thread.start()
            self.threads.append(thread)

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
