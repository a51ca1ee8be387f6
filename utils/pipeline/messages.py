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

_conversation_ids = itertools.count(1)
_turn_ids = itertools.count(1)


INTERRUPTED = "[interrupted by the user]"  # ends what the history keeps of a reply the user cut short


class ConversationEvents:
    """What the stages tell a conversation's client as a turn goes by (the Realtime endpoint turns them into
    protocol events). Called on the stages' threads: implementations must be quick and thread-safe.
    The default does nothing: the socket protocol and local mode have no channel for them."""

    def speech_started(self, turn_audio_ms: float) -> None:
        """The VAD heard the user start speaking (or go on after a pause it had taken for the end);
        `turn_audio_ms`: where, on the conversation's audio clock."""

    def speech_stopped(self, turn_audio_ms: float) -> None:
        """The VAD heard the voice stop (the turn may still go on: then speech_started follows)."""

    def committed(self, turn: Turn) -> None:
        """The user's turn is over (confirmed): `turn` will be answered. Said before its transcript."""

    def transcribed(self, turn: Turn, text: str, language: str | None) -> None:
        """The confirmed turn's transcript."""

    def dropped(self, turn: Turn) -> None:
        """The turn ends without a reply (nothing intelligible, a failing stage)."""

    def heard(self, turn: Turn) -> str | None:
        """The part of `turn`'s reply the user has heard so far; None: unknown (the history keeps all of it)."""
        return None

    def interrupted(self, turn: Turn) -> None:
        """The reply to `turn` was cut short (barge-in, or the client cancelled it)."""

    def function_call(self, turn: Turn, call: ToolCall) -> None:
        """The model asks the client to run a function (one of the conversation's `tools`)."""


class Conversation:
    """One client's conversation. Ending it cancels every message that still belongs to it.

    `should_listen` is cleared while the assistant answers, so it does not take its own voice (or the
    user's words during the reply) for a new question; it is set again once the reply is done. With
    `barge_in` the VAD goes on listening during the reply (the client cancels its echo) and speech
    interrupts it. `paced_output`: the client's sink, not the TTS, says when the reply is over (it sends
    at the pace of playback). `instructions`: this conversation's system prompt, if the client set one.
    """

    def __init__(self, events: ConversationEvents | None = None, barge_in: bool = False) -> None:
        self.id = next(_conversation_ids)
        self._ended = threading.Event()
        self.should_listen = threading.Event()
        self.should_listen.set()
        self.events = events or ConversationEvents()
        self.barge_in = barge_in
        self.paced_output = False
        self.instructions: str | None = None
        self.tools: list[dict] = []  # function tools in the Chat Completions format, for backends that take them
        self.reply: Turn | None = None  # the turn being answered
        self._lock = threading.Lock()

    def reply_started(self, turn: Turn) -> None:
        """The VAD confirmed `turn`: the assistant answers it, and stops listening unless barge-in is on."""
        with self._lock:
            self.reply = turn
            self.should_listen.clear()

    def reply_finished(self, turn: Turn) -> None:
        """`turn`'s reply is over (played, dropped or interrupted): listen again."""
        with self._lock:
            if self.reply is turn:
                self.reply = None
            self.should_listen.set()

    def interrupt(self) -> Turn | None:
        """Cut the reply under way short, keeping in the history what the user heard of it; the interrupted turn
        (None when no reply was under way). The conversation listens again at once."""
        with self._lock:
            turn, self.reply = self.reply, None
            self.should_listen.set()
        if turn is None or turn.interrupted or turn.cancelled:
            return None
        turn.interrupt(self.events.heard(turn))
        self.events.interrupted(turn)
        return turn

    def end(self) -> None:
        self._ended.set()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def __repr__(self) -> str:
        return f"Conversation({self.id}{', ended' if self.ended else ''})"


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
    # sentence (None: not known yet, or the recogniser does not punctuate), and the decision, for the metrics.
    end_probability: float | None = None
    ends_sentence: bool | None = None
    end_decision: str | None = None
    end_silence_ms: float | None = None

    def __post_init__(self) -> None:
        self._settled = threading.Event()
        self._confirmed = not self.tentative
        self._on_confirm: list = []
        self._lock = threading.Lock()
        self._interrupted = False
        self.heard: str | None = None
        self._reply_message: dict | None = None  # the assistant message of this turn in the history
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

    def record_reply(self, append, reply: str) -> None:
        """Put the reply in the history with `append(text) -> the assistant's message dict`: all of it, or, once
        interrupted, what was heard. A later interruption or revision edits that message in place."""
        with self._lock:
            if self._reply_message is not None:
                return  # recorded already (an interruption raced the end of the reply)
            text = cut_reply(self.heard) if self._interrupted and self.heard is not None else reply
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


@dataclass
class SpeechSegment:
    """One utterance cut by the VAD: float32 samples in [-1, 1] at 16 kHz."""

    audio: np.ndarray
    turn: Turn


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
