"""Which conversation the socket server is serving now (one client at a time)."""
from __future__ import annotations

import threading

from utils.messages import Conversation


class ConversationBoard:
    def __init__(self) -> None:
        self._current: Conversation | None = None
        self._changed = threading.Condition()

    def start(self) -> Conversation:
        with self._changed:
            if self._current is not None:
                self._current.end()
            self._current = Conversation()
            self._changed.notify_all()
            return self._current

    @property
    def current(self) -> Conversation | None:
        return self._current

    def wait_for_active(self, timeout: float) -> Conversation | None:
        """The active conversation, waiting up to `timeout` for one to start."""
        with self._changed:
            self._changed.wait_for(lambda: self._current is not None and not self._current.ended, timeout)
            current = self._current
            return current if current is not None and not current.ended else None
