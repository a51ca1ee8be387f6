"""Fakes at the edges: models with the same small interfaces as the real ones, scripted and instant."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np


class ScriptedVADModel:
    """Speech probability = 1.0 where the window is loud, else 0.0 (a tone is 'speech')."""

    def __init__(self, level: float = 0.05) -> None:
        self.level = level
        self.resets = 0

    def fresh(self) -> "ScriptedVADModel":
        return ScriptedVADModel(self.level)

    def reset_states(self) -> None:
        self.resets += 1

    def __call__(self, window: np.ndarray) -> float:
        return 1.0 if np.abs(window).max() > self.level else 0.0


class FakeWhisper:
    """faster-whisper's transcribe(): returns the scripted texts in order, or raises an exception given."""

    def __init__(self, *texts, language: str = "en") -> None:
        self.texts = list(texts)
        self.language = language
        self.calls = []

    def transcribe(self, audio, **kwargs):
        self.calls.append((len(audio), kwargs))
        if not np.any(audio):  # the warm-up call on silence
            return iter([]), SimpleNamespace(language=self.language)
        text = self.texts.pop(0) if self.texts else "hello"
        if isinstance(text, Exception):
            raise text
        return iter([SimpleNamespace(text=text)]), SimpleNamespace(language=self.language)


class EchoLLM:
    """llama-cpp-python's create_chat_completion(stream=True): echoes the user message word by word."""

    def __init__(self, prefix: str = "You said: ") -> None:
        self.prefix = prefix
        self.requests = []

    def create_chat_completion(self, messages, stream, **kwargs):
        self.requests.append((messages, kwargs))
        text = self.prefix + messages[-1]["content"]
        for i, word in enumerate(text.split(" ")):
            yield {"choices": [{"delta": {"content": word if i == 0 else " " + word}}]}


class ToneTTS:
    """hibari's interface: 24 kHz float audio, 0.1 s of tone per word."""

    sample_rate = 24000

    def __init__(self) -> None:
        self.texts = []

    def __call__(self, text, speed=1.0, seed=None):
        self.texts.append(text)
        n = int(0.1 * self.sample_rate) * max(1, len(text.split()))
        return (0.3 * np.sin(np.arange(n) * 2 * np.pi * 440 / self.sample_rate)).astype(np.float32)


def tone_pcm(seconds: float, rate: int = 16000, amplitude: float = 0.3) -> bytes:
    t = np.arange(int(seconds * rate))
    return (amplitude * 32767 * np.sin(2 * np.pi * 300 * t / rate)).astype("<i2").tobytes()


def silence_pcm(seconds: float, rate: int = 16000) -> bytes:
    return bytes(2 * int(seconds * rate))


class DurationWhisper(FakeWhisper):
    """Hears `round(seconds * 10)` words in an utterance, so each client's question (a tone of its own
    length) gets an answer of its own length back from EchoLLM + ToneTTS."""

    def transcribe(self, audio, **kwargs):
        if not np.any(audio):
            return iter([]), SimpleNamespace(language=self.language)
        words = round(len(audio) / 16000 * 10)
        return iter([SimpleNamespace(text=" ".join(["word"] * words))]), SimpleNamespace(language=self.language)
