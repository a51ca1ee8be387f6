"""Chat history: the system prompt plus past exchanges, append-only between trims.

A backend that keeps the prompt it has read (llama.cpp; an OpenAI-compatible server's prefix cache) reads
only what is new in a turn as long as the history only grows. Sliding it by one exchange per turn would
change its start every turn and force the whole history to be read again before the first word. So the
history grows to `size` exchanges and then drops its oldest half at once: the prompt changes on one turn
in `size // 2`, and the backend reads the history ahead after each reply, while the user listens.
"""
from __future__ import annotations

from utils.sentences import sentence_tokenizer

HISTORY_SENTENCES = 2  # what the history keeps of a reply (the spoken prompt asks for one or two sentences)


def remembered(reply: str) -> str:
    """What the history keeps of a reply: its first sentences. A small model copies long, rambling
    replies (cut off at the token limit) into its later answers."""
    sentences = sentence_tokenizer().tokenize(reply)
    return " ".join(sentences[:HISTORY_SENTENCES]) if sentences else reply


# Before past exchanges written into the system prompt. Told this, SmolLM2-135M answers 94% of factual
# questions right late in a conversation (60/64), against 73% with the exchanges as chat messages, which
# it tends to continue instead of answering the new question (benchmarks/answers.py --orders 4).
HISTORY_HEAD = "Earlier in this conversation (for context only; answer the user's new question):"


class Chat:
    """`history_format` "system": past exchanges are lines of the system prompt; "messages": chat messages."""

    def __init__(self, size: int, system_prompt: str | None = None, system_role: str = "system",
                 history_format: str = "system") -> None:
        self.size = max(0, size)
        self.history_format = history_format
        self.system = {"role": system_role, "content": system_prompt} if system_prompt else None
        self.exchanges: list[tuple[dict, dict]] = []
        # A question whose answer waits for function outputs: the user's message and the model's call message.
        self.pending: list[dict] = []
        self._languages: list[str | None] = []  # each exchange's question language

    def history(self) -> list[dict]:
        """The system prompt and the past exchanges: the start of the next prompt."""
        if self.history_format == "system" and self.exchanges:
            lines = "\n".join(f"User: {u['content']}\nAssistant: {a['content']}" for u, a in self.exchanges)
            prompt = f"{self.system['content']}\n\n" if self.system else ""
            role = self.system["role"] if self.system else "system"
            return [{"role": role, "content": f"{prompt}{HISTORY_HEAD}\n{lines}"}]
        head = [self.system] if self.system else []
        return head + [message for exchange in self.exchanges for message in exchange]

    def set_system_prompt(self, prompt: str | None) -> None:
        """The client's own instructions (a Realtime session.update) replace the configured system prompt."""
        if prompt is None or (self.system is not None and self.system["content"] == prompt):
            return
        role = self.system["role"] if self.system else "system"
        self.system = {"role": role, "content": prompt} if prompt else None

    def messages(self, user_text: str) -> list[dict]:
        """What the model sees for a new user message."""
        return self.history() + [{"role": "user", "content": user_text}]

    def messages_after_calls(self, outputs) -> list[dict]:
        """What the model sees to go on from its function calls: the pending question, its calls, their outputs."""
        tool_messages = [{"role": "tool", "tool_call_id": call_id, "content": output} for call_id, output in outputs]
        return self.history() + self.pending + tool_messages

    def append(self, user_text: str, assistant_text: str, language: str | None = None) -> dict:
        """Add an exchange; returns its assistant message, which an interruption may later cut short in place."""
        answer = {"role": "assistant", "content": assistant_text}
        if not self.size:
            return answer
        self.exchanges.append(({"role": "user", "content": user_text}, answer))
        self._languages.append(language)
        if len(self.exchanges) > self.size:
            keep = max(1, self.size // 2)
            del self.exchanges[:-keep]
            del self._languages[:-keep]
        return answer

    def keep_language(self, language: str | None) -> None:
        """Drop the exchanges in another language than `language` (None: unknown, keep all). A small model
        goes on answering in the history's language whatever it is told; a switch of language is rare
        enough that reading the shorter history again once costs little."""
        if language is None or not self.exchanges:
            return
        same = [i for i, lang in enumerate(self._languages) if lang is None or _base(lang) == _base(language)]
        if len(same) < len(self.exchanges):
            self.exchanges = [self.exchanges[i] for i in same]
            self._languages = [self._languages[i] for i in same]

    def clear(self) -> None:
        self.exchanges.clear()
        self._languages.clear()


def _base(language: str) -> str:
    return language.split("-")[0].lower()
