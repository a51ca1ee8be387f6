"""Chat history: the system prompt plus past exchanges, append-only between trims.

A backend that keeps the prompt it has read (llama.cpp; an OpenAI-compatible server's prefix cache) reads
only what is new in a turn as long as the history only grows. Sliding it by one exchange per turn would
change its start every turn and force the whole history to be read again before the first word. So the
history grows to `size` exchanges and then drops its oldest half at once: the prompt changes on one turn
in `size // 2`, and the backend can read the trimmed history ahead, while the user listens (`trimmed`).
"""
from __future__ import annotations


class Chat:
    def __init__(self, size: int, system_prompt: str | None = None, system_role: str = "system") -> None:
        self.size = max(0, size)
        self.system = {"role": system_role, "content": system_prompt} if system_prompt else None
        self.exchanges: list[tuple[dict, dict]] = []
        self._languages: list[str | None] = []  # each exchange's question language
        self.trimmed = False  # the last append dropped old exchanges: the prompt's start changed

    def history(self) -> list[dict]:
        """The system prompt and the past exchanges: the start of the next prompt."""
        head = [self.system] if self.system else []
        return head + [message for exchange in self.exchanges for message in exchange]

    def messages(self, user_text: str) -> list[dict]:
        """What the model sees for a new user message."""
        return self.history() + [{"role": "user", "content": user_text}]

    @property
    def languages(self) -> list[str | None]:
        """The language of each question in the history."""
        return list(self._languages)

    def append(self, user_text: str, assistant_text: str, language: str | None = None) -> None:
        self.trimmed = False
        if not self.size:
            return
        self.exchanges.append(({"role": "user", "content": user_text}, {"role": "assistant", "content": assistant_text}))
        self._languages.append(language)
        if len(self.exchanges) > self.size:
            keep = max(1, self.size // 2)
            del self.exchanges[:-keep]
            del self._languages[:-keep]
            self.trimmed = True

    def clear(self) -> None:
        self.trimmed = bool(self.exchanges)
        self.exchanges.clear()
        self._languages.clear()
