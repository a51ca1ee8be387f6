"""What every STT backend shares: a speech segment in, a transcript out (or the turn dropped)."""
from __future__ import annotations

import logging

import numpy as np

from utils.base_handler import BaseHandler
from utils.console import print_user
from utils.messages import SpeechSegment, Transcript

logger = logging.getLogger(__name__)


class STTHandler(BaseHandler):
    """Subclasses write `setup` and `recognize(audio) -> (text, language)`."""

    def recognize(self, audio: np.ndarray) -> tuple[str, str | None]:
        raise NotImplementedError

    def process(self, segment: SpeechSegment):
        text, language = self.recognize(segment.audio)
        segment.turn.mark("transcript")
        if not text:
            logger.info("heard nothing intelligible; listening again")
            self.drop_turn(segment)
            return
        segment.turn.when_confirmed(lambda: print_user(text))  # a speculative turn may be withdrawn
        yield Transcript(text, language, segment.turn)
