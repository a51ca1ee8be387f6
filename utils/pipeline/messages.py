"""Typed messages that flow down the pipeline queues.

Every message carries its `Turn`, which holds the turn's timestamps and the conversation it belongs to,
so timing and cancellation travel with the data instead of living in globals.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from utils.pipeline.conversation import Conversation, ConversationEvents

__all__ = [
    "END",
    "Conversation",
    "ConversationEvents",
    "Turn",
    "AudioFrame",
    "SpeechSegment",
    "Transcript",
    "ToolCall",
    "Sentence",
    "AudioOut",
    "is_cancelled",
    "conversation_of",
    "cut_reply",
    "INTERRUPTED",
]


class _End:
    """The END sentinel: flows down every queue once at shutdown."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "END"


END = _End()

_turn_ids = itertools.count(1)

INTERRUPTED = "[interrupted by the user]"  # ends what the history keeps of a reply the user cut short


@dataclass
class Turn:
    """One user utterance and the reply to it. `marks` are time.monotonic() stamps by stage name.

    A `tentative` turn is started speculatively, before the end of speech is certain (the VAD heard a
    short silence): stages work on it at once, but nothing is said or recorded until it is confirmed.
    If the user goes on speaking it is withdrawn, which cancels it like an ended conversation.
    """

    conversation: Conversation
    speech_end: float
    tentative: bool = False
    id: int = field(default_factory=lambda: next(_turn_ids))
    marks: dict[str, float] = field(default_factory=dict)
    # End of turn, for a tentative turn: what the audio model heard (P complete), whether the transcript ends a
    # sentence (None: not known yet, or the recogniser does not punctuate) and how sure the recogniser was of that
    # ending (None: it cannot say), and the decision, for the metrics.
    end_probability: float | None = None
    ends_sentence: bool | None = None
    sentence_end_probability: float | None = None
    end_decision: str | None = None
    end_silence_ms: float | None = None
    # The reply's first piece for the voice and how many pieces the model wrote for it, for the metrics.
    first_phrase: str | None = None
    first_phrase_pieces: int | None = None
    murmur: bool = False  # withdrawn by the STT as a murmur over a reply (STT/base.py): the VAD waits for more

    def __post_init__(self) -> None:
        self._settled = threading.Event()
        self._confirmed = not self.tentative
        self._on_confirm: list = []
        self._lock = threading.Lock()
        self._interrupted = False
        self.heard: str | None = None
        self._reply_message: dict | None = None  # the assistant message of this turn in the history
        self._recorded = ""  # the text recorded there, whole
        self.held_heard: str | None = None  # what was heard when the user started talking over the reply
        if not self.tentative:
            self._settled.set()

    def mark(self, name: str, when: float | None = None) -> bool:
        """Record the first time `name` happened in this turn; False if it was already recorded."""
        if name in self.marks:
            return False
        self.marks[name] = time.monotonic() if when is None else when
        return True

    def since_speech_end(self, name: str) -> float | None:
        t = self.marks.get(name)
        return None if t is None else t - self.speech_end

    @property
    def confirmed(self) -> bool:
        return self._confirmed

    @property
    def settled(self) -> bool:
        """Confirmed or withdrawn."""
        return self._settled.is_set()

    @property
    def withdrawn(self) -> bool:
        return self._settled.is_set() and not self._confirmed

    @property
    def cancelled(self) -> bool:
        return self.conversation.ended or self.withdrawn or self._interrupted

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def interrupt(self, heard: str | None) -> None:
        """The user cut the reply short after hearing `heard` (None: unknown, all of it): every stage stops
        working on this turn, and the history keeps only what was heard, marked as interrupted."""
        with self._lock:
            self._interrupted = True
            self.heard = heard
            if self._reply_message is not None and heard is not None:
                self._reply_message["content"] = cut_reply(heard)

    def revise_heard(self, heard: str) -> None:
        """The client says how much of the (finished or interrupted) reply was played: the history keeps that."""
        with self._lock:
            self.heard = heard
            if self._reply_message is not None:
                self._reply_message["content"] = cut_reply(heard)

    def hold_heard(self, heard: str | None) -> None:
        """The user is talking over the reply, which is paused: until it is known whether it goes on, the history
        keeps it as cut there (a reply to the user's new words, started at once, must see it so)."""
        with self._lock:
            self.held_heard = heard
            if self._reply_message is not None and heard is not None and not self._interrupted:
                self._reply_message["content"] = cut_reply(heard)

    def release_heard(self) -> None:
        """It was not a cut-in: the history keeps the whole reply again."""
        with self._lock:
            self.held_heard = None
            if self._reply_message is not None and not self._interrupted:
                self._reply_message["content"] = self._recorded

    def record_reply(self, append, reply: str) -> None:
        """Put the reply in the history with `append(text) -> the assistant's message dict`: all of it, or, once
        interrupted, what was heard. A later interruption or revision edits that message in place."""
        with self._lock:
            if self._reply_message is not None:
                return  # recorded already (an interruption raced the end of the reply)
            text = cut_reply(self.heard) if self._interrupted and self.heard is not None else reply
            self._recorded = reply
            self._reply_message = append(text)

    def confirm(self) -> None:
        """The end of speech is certain: run what waited for it. A withdrawn turn stays withdrawn."""
        with self._lock:
            if self._settled.is_set():
                return
            self._confirmed = True
            callbacks, self._on_confirm = self._on_confirm, []
            self._settled.set()
        for callback in callbacks:
            callback()

    def withdraw(self) -> None:
        """The user went on speaking: this turn is void. A confirmed turn stays confirmed."""
        with self._lock:
            if self._settled.is_set():
                return
            self._on_confirm = []
            self._settled.set()

    def when_confirmed(self, callback) -> None:
        """Run `callback` once the turn is confirmed (now, if it is); never, if it is withdrawn."""
        with self._lock:
            if not self._settled.is_set():
                self._on_confirm.append(callback)
                return
        if self._confirmed:
            callback()

    def wait_settled(self, timeout: float) -> bool:
        """Wait until confirmed or withdrawn; False on time-out."""
        return self._settled.wait(timeout)


@dataclass
class AudioFrame:
    """Raw int16 little-endian mono audio as it arrived from the microphone or a client."""

    pcm: bytes
    conversation: Conversation
    captured_at: float | None = None  # time.monotonic() when its last sample was captured, where known (local mode)


@dataclass
class SpeechSegment:
    """One utterance cut by the VAD: float32 samples in [-1, 1] at 16 kHz."""

    audio: np.ndarray
    turn: Turn
    speech_ms: float | None = None  # the speech itself, without the padding and the VAD's lag (None: not known)


@dataclass
class Transcript:
    """What the user said. `tool_outputs`: instead of words, the client's results of the function calls the model
    made in the previous turn, as (call_id, output): the model goes on from them."""

    text: str
    language: str | None
    turn: Turn
    tool_outputs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ToolCall:
    """A function call the language model made (a Realtime client runs it and sends back its output)."""

    call_id: str
    name: str
    arguments: str


@dataclass
class Sentence:
    """A piece of the reply ready to be spoken; `last` closes the reply (its text may be empty)."""

    text: str
    language: str | None
    turn: Turn
    last: bool = False


@dataclass
class AudioOut:
    """A fixed-size block of reply audio, int16 little-endian bytes at 16 kHz; `last` ends the reply. The first
    block of each sentence carries the sentence's `text` (what a client shows as the reply's transcript)."""

    pcm: bytes
    turn: Turn
    last: bool = False
    text: str = ""


def cut_reply(heard: str) -> str:
    """What the history keeps of an interrupted reply."""
    return f"{heard.strip()} {INTERRUPTED}".strip()


def is_cancelled(item) -> bool:
    """The item belongs to an ended conversation or a withdrawn turn: nobody wants it any more."""
    if isinstance(item, AudioFrame):
        return item.conversation.ended
    turn = getattr(item, "turn", None)
    return turn is not None and turn.cancelled


def conversation_of(item) -> Conversation | None:
    if isinstance(item, AudioFrame):
        return item.conversation
    turn = getattr(item, "turn", None)
    return turn.conversation if turn is not None else None
