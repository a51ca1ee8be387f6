"""The loop every pipeline stage runs in its own thread."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Iterator

from utils.pipeline.messages import END, is_cancelled

logger = logging.getLogger(__name__)

POLL_S = 0.1  # queue reads time out this often so a stop request is seen quickly


class BaseHandler:
    """Owns the loop: read an item, run `process` (a generator), put what it yields downstream.

    Subclasses write `setup`, `process` and `cleanup`. The loop
    - drops items whose conversation has ended (a client left) or whose turn was withdrawn,
    - logs an exception from `process` with the handler's name, drops that turn and keeps serving,
    - always passes END on, also after an error, so the next stage never waits forever.
    """

    def __init__(
        self,
        stop_event: threading.Event,
        queue_in: queue.Queue | None,
        queue_out: queue.Queue | None,
        setup_kwargs: dict | None = None,
        on_turn_dropped: Callable[[Any], None] | None = None,
    ) -> None:
        self.stop_event = stop_event
        self.queue_in = queue_in
        self.queue_out = queue_out
        self.on_turn_dropped = on_turn_dropped
        self.errors = 0
        self.setup(**(setup_kwargs or {}))

    @property
    def name(self) -> str:
        return type(self).__name__

    def setup(self, *args: Any, **kwargs: Any) -> None:
        """Load the model, read the config: whatever the handler needs before its first item."""

    def process(self, item) -> Iterator[Any]:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass

    def run(self) -> None:
        queue_in = self.queue_in
        if queue_in is None:
            raise TypeError(f"{self.name} has no queue to read: it serves only direct process() calls")
        try:
            while not self.stop_event.is_set():
                try:
                    item = queue_in.get(timeout=POLL_S)
                except queue.Empty:
                    self._idle()
                    continue
                if item is END:
                    break
                self._handle(item)
        finally:
            try:
                self.cleanup()
            except Exception:
                logger.exception("%s: cleanup failed", self.name)
            self.put(END)
            logger.debug("%s stopped", self.name)

    def idle(self) -> None:
        """Called when no item has come for POLL_S: work that waits for a free moment (the LLM reads ahead)."""

    def _idle(self) -> None:
        try:
            self.idle()
        except Exception:
            self.errors += 1
            logger.exception("%s failed on work done between items", self.name)

    def _handle(self, item) -> None:
        if is_cancelled(item):
            return
        try:
            for out in self.process(item):
                if is_cancelled(item):
                    break  # the client left, or the user went on speaking: stop producing for this turn
                self.put(out)
        except Exception:
            self.errors += 1
            logger.exception("%s failed on %s; dropping this turn", self.name, type(item).__name__)
            self.drop_turn(item)

    def drop_turn(self, item) -> None:
        """The turn ends here without a reply (error, empty transcript...): let the pipeline listen again."""
        if self.on_turn_dropped is not None:
            self.on_turn_dropped(item)

    def put(self, item) -> None:
        if self.queue_out is not None:
            put_until_stopped(self.queue_out, item, self.stop_event)


def put_until_stopped(q: queue.Queue, item, stop_event: threading.Event) -> None:
    """Put, waiting while the queue is full, but give up once stopping (END included: a stopping
    consumer exits on the stop event anyway)."""
    while True:
        try:
            q.put(item, timeout=POLL_S)
            return
        except queue.Full:
            if stop_event.is_set():
                return
