"""Chat history: the system prompt plus the last `size` exchanges."""
from __future__ import annotations

from collections import deque


class Chat:
    def __init__(self, size: int, system_prompt: str | None = None, system_role: str = "system") -> None:
        self.system = {"role": system_role, "content": system_prompt} if system_prompt else None
        self.exchanges: deque[tuple[dict, dict]] = deque(maxlen=max(0, size))

    def messages(self, user_text: str) -> list[dict]:
        """What the model sees for a new user message."""
        history = [message for exchange in self.exchanges for message in exchange]
        head = [self.system] if self.system else []
        return head + history + [{"role": "user", "content": user_text}]

    def append(self, user_text: str, assistant_text: str) -> None:
        if self.exchanges.maxlen:
            self.exchanges.append(({"role": "user", "content": user_text}, {"role": "assistant", "content": assistant_text}))

    def clear(self) -> None:
        self.exchanges.clear()
