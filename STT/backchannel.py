"""Words a listener says over a speaker without taking the turn ("mm-hmm", "yeah", "okay"): said over a reply,
they let it play on instead of cutting it (barge-in)."""
from __future__ import annotations

import re

BACKCHANNEL_WORDS = frozenset(
    "m mm mmm hm hmm mhm mm-hmm uh-huh uh huh ah oh um uhm yeah yep yes ya okay ok k right sure alright "
    "aha i see cool nice wow".split()
)
MAX_WORDS = 4
# A murmur this short is a backchannel whatever the recogniser made of it (Whisper tiny hears "mm-hmm" as "I'm them",
# "Mama" or "And mam them"), unless it asks something or holds a word people say to stop or redirect a speaker.
MURMUR_S = 1.1
MURMUR_WORDS = 3
STOP_WORDS = frozenset(
    "stop wait no nope not don't can't didn't isn't hold hey sorry pause quiet enough actually excuse shut cancel "
    "what why how who where when which again repeat louder slower faster help listen tell say explain mean "
    "understand".split()
)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z'-]+", text.lower()) if w.strip("-'")]


def backchannel_kind(text: str, speech_s: float | None = None) -> str | None:
    """"words" for a transcript that is only backchannel words (or nothing: a cough, a breath), in English; with the
    speech's duration, "murmur" for one of at most MURMUR_WORDS words shorter than MURMUR_S that neither asks nor
    holds a stop word (a garbled "mm-hmm", or a first word the recogniser could not make out); else None."""
    words = _words(text)
    parts = [p for w in words for p in ([w] if w in BACKCHANNEL_WORDS else w.split("-")) if p]
    if len(words) <= MAX_WORDS and all(p in BACKCHANNEL_WORDS for p in parts):
        return "words"
    if (speech_s is not None and speech_s < MURMUR_S and len(words) <= MURMUR_WORDS and "?" not in text
            and not any(p.strip("'") in STOP_WORDS for p in parts)):
        return "murmur"
    return None


def is_backchannel(text: str, speech_s: float | None = None) -> bool:
    """True for backchannel words or a murmur (see backchannel_kind)."""
    return backchannel_kind(text, speech_s) is not None
