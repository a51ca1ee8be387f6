"""Words a listener says over a speaker without taking the turn ("mm-hmm", "yeah", "okay"): said over a reply,
they let it play on instead of cutting it (barge-in)."""
from __future__ import annotations

import re

BACKCHANNEL_WORDS = frozenset(
    "m mm mmm hm hmm mhm mm-hmm uh-huh uh huh ah oh um uhm yeah yep yes ya okay ok k right sure alright "
    "aha i see cool nice wow".split()
)
MAX_WORDS = 4


def is_backchannel(text: str) -> bool:
    """True for a transcript that is only backchannel words (or nothing: a cough, a breath), in English."""
    words = [w for w in re.split(r"[^a-z'-]+", text.lower()) if w.strip("-'")]
    parts = [p for w in words for p in ([w] if w in BACKCHANNEL_WORDS else w.split("-")) if p]
    return len(words) <= MAX_WORDS and all(p in BACKCHANNEL_WORDS for p in parts)
