"""What every STT backend shares: a speech segment in, a transcript out (or the turn dropped)."""
from __future__ import annotations

import logging

import numpy as np

from utils.console import print_user
from utils.pipeline.base_handler import BaseHandler
from utils.pipeline.messages import SpeechSegment, Transcript
from VAD.end_of_turn import ends_sentence

logger = logging.getLogger(__name__)


class STTHandler(BaseHandler):
    """Subclasses write `setup` and `recognize(audio) -> (text, language)`."""

    # Whether transcripts end with a full stop only where the speaker finished a sentence (the Whisper family
    # does): then a transcript without one tells the end-of-turn logic that the user has not finished.
    punctuates = True

    def recognize(self, audio: np.ndarray) -> tuple[str, str | None]:
        raise NotImplementedError

    def process(self, segment: SpeechSegment):
        text, language = self.recognize(segment.audio)
        segment.turn.ends_sentence = ends_sentence(text) if self.punctuates else None
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
