"""What every STT backend shares: a speech segment in, a transcript out (or the turn dropped)."""
from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

from STT.backchannel import backchannel_kind
from utils.console import print_user
from utils.core_share import CORES
from utils.pipeline.base_handler import BaseHandler
from utils.pipeline.messages import Conversation, SpeechSegment, Transcript
from VAD.end_of_turn import ends_sentence

logger = logging.getLogger(__name__)


class Recognition(NamedTuple):
    text: str
    language: str | None
    # the recogniser's own probability that the text ends a sentence where it stops (Whisper on its short window:
    # STT/faster_whisper_window.py); None where it cannot say. The end-of-turn logic weighs it
    sentence_end_probability: float | None = None


class STTHandler(BaseHandler):
    """Subclasses write `setup` and `recognize(audio) -> (text, language)`, or `recognize_scored(audio) -> Recognition`
    when they can say more."""

    # Whether transcripts end with a full stop only where the speaker finished a sentence (the Whisper family
    # does): then a transcript without one tells the end-of-turn logic that the user has not finished.
    punctuates = True
    current_conversation: Conversation | None = None  # whose utterance `recognize` is working on (per-user state)

    def recognize(self, audio: np.ndarray) -> tuple[str, str | None]:
        raise NotImplementedError

    def recognize_scored(self, audio: np.ndarray) -> Recognition:
        return Recognition(*self.recognize(audio))

    def conversation_state(self, key: str, create):
        """State a backend keeps per conversation (the last language heard...); outside a turn (the warm-up), a
        throwaway one."""
        conversation = self.current_conversation
        return create() if conversation is None else conversation.state((self, key), create)

    def process(self, segment: SpeechSegment):
        self.current_conversation = segment.turn.conversation
        try:
            with CORES.computing():
                text, language, sentence_end_probability = self.recognize_scored(segment.audio)
        finally:
            self.current_conversation = None
        conversation = segment.turn.conversation
        speech_s = None if segment.speech_ms is None else segment.speech_ms / 1000
        kind = backchannel_kind(text, speech_s) if conversation.paused is not None and not segment.turn.settled else None
        if kind is not None:
            # said over a reply that paused to hear it: not a turn; the reply plays on (VAD/vad_handler.py). A murmur
            # may also be a first word Whisper could not make out ("Sorry," heard as "Far away."): the VAD lets the
            # reply play on only if nothing follows it
            logger.info("heard %r over the reply: %s", text, "it plays on" if kind == "words" else "a murmur")
            segment.turn.murmur = kind == "murmur"
            segment.turn.withdraw()
            if kind == "words":
                conversation.resume_reply()
            return  # (before the transcript mark: the VAD may confirm a turn once it is there)
        segment.turn.ends_sentence = ends_sentence(text) if self.punctuates else None
        segment.turn.sentence_end_probability = sentence_end_probability
        segment.turn.mark("transcript")
        if not text:
            logger.info("heard nothing intelligible; listening again")
            self.drop_turn(segment)
            return
        turn = segment.turn

        def heard() -> None:  # once confirmed: a speculative turn may be withdrawn
            print_user(text)
            turn.conversation.events.transcribed(turn, text, language)

        turn.when_confirmed(heard)
        yield Transcript(text, language, segment.turn)
