"""Which language to transcribe in when Whisper detects one: the detected one if we support it, else the last good one."""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# Languages the rest of the pipeline is meant to answer in; a detection outside them is more often a
# misdetection (short or noisy utterance) than a change of language.
SUPPORTED_LANGUAGES = ("en", "fr", "es", "zh", "ja", "ko", "de", "it", "pt")
FIRST_LANGUAGE = "en"  # the "last good" language before anything was detected


class LanguageChooser:
    """State in (the last supported language heard), detection in, language to transcribe in out."""

    def __init__(self, supported: tuple[str, ...] = SUPPORTED_LANGUAGES, first: str = FIRST_LANGUAGE) -> None:
        self.supported = supported
        self.first = first
        self.reset()

    def reset(self) -> None:
        self.last = self.first

    def choose(self, detected: str) -> str:
        if detected in self.supported:
            self.last = detected
            return detected
        logger.info("Whisper detected unsupported language '%s'; transcribing in '%s'", detected, self.last)
        return self.last
