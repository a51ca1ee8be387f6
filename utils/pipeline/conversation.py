"""One conversation: the home of its turns' life and of every stage's state for it.

A conversation is created when a client connects (or local mode starts) and ended explicitly when it leaves;
ending it cancels whatever of it is still in flight and frees the state the stages kept for it. The stages
report the turn's life here: the VAD confirms a turn (`reply_started`), a stage drops it (`turn_dropped`), the
reply plays out (`reply_finished`), or the user cuts in: the VAD pauses the reply at the first sound of speech
(`pause_reply`), then either interrupts it (`interrupt`, the user goes on) or lets it go on (`resume_reply`, a
cough). The client hears of each step through its `ConversationEvents`.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from utils.pipeline.messages import ToolCall, Turn

_conversation_ids = itertools.count(1)


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

    def reply_paused(self, turn: Turn) -> None:
        """The user may be cutting in: stop the reply's sound now, keep the rest (it may resume)."""

    def reply_resumed(self, turn: Turn) -> None:
        """It was not a cut-in (a cough, a "mm-hmm"): play the rest of the reply from where it paused."""


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
        self.paused: Turn | None = None  # the reply whose sound is held while the VAD hears whether the user cuts in
        self._state: dict[Any, Any] = {}  # what each stage keeps for this conversation, by the stage's key
        self._lock = threading.Lock()

    def state(self, key: Any, create: Callable[[], Any]) -> Any:
        """The state a stage keeps for this conversation under `key` (made by `create` the first time). Freed when
        the conversation ends; only the stage's own thread touches it."""
        value = self._state.get(key)
        if value is None:
            if self.ended:
                return create()  # a late item of an ended conversation: nothing is kept for it any more
            value = self._state[key] = create()
        return value

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
            if self.paused is turn:
                self.paused = None
            self.should_listen.set()

    def turn_dropped(self, turn: Turn) -> None:
        """A stage gave up on `turn` (nothing intelligible, an error): no reply comes; listen again once the VAD
        has confirmed it (a speculative turn still waits for that)."""

        def dropped() -> None:
            self.events.dropped(turn)
            self.reply_finished(turn)

        turn.when_confirmed(dropped)

    def pause_reply(self) -> Turn | None:
        """The VAD heard speech over the reply: hold its sound until it is known whether the user cuts in."""
        with self._lock:
            turn = self.reply
            if turn is None or self.paused is turn or turn.cancelled:
                return None
            self.paused = turn
        self.events.reply_paused(turn)
        return turn

    def expect_cut(self) -> None:
        """The user's speech over the paused reply lasts: likely a new turn, whose reply may start before it is
        certain (speculation). Until then the history keeps the paused reply as heard so far."""
        turn = self.paused
        if turn is not None:
            turn.hold_heard(self.events.heard(turn))

    def resume_reply(self) -> Turn | None:
        """It was not a cut-in: the held reply plays on from where it paused."""
        with self._lock:
            turn, self.paused = self.paused, None
        if turn is None or turn.cancelled:
            return None
        turn.release_heard()
        self.events.reply_resumed(turn)
        return turn

    def interrupt(self) -> Turn | None:
        """Cut the reply under way short, keeping in the history what the user heard of it; the interrupted turn
        (None when no reply was under way). The conversation listens again at once."""
        with self._lock:
            turn, self.reply, self.paused = self.reply, None, None
            self.should_listen.set()
        if turn is None or turn.interrupted or turn.cancelled:
            return None
        # what was heard when the user started talking over it (the client stopped playing there), else by now
        turn.interrupt(turn.held_heard if turn.held_heard is not None else self.events.heard(turn))
        self.events.interrupted(turn)
        return turn

    def end(self) -> None:
        """The client left: everything of this conversation still in flight is cancelled, its state freed."""
        self._ended.set()
        self._state = {}

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def __repr__(self) -> str:
        return f"Conversation({self.id}{', ended' if self.ended else ''})"
