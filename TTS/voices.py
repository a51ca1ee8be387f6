"""Which voice speaks a sentence, from the sentence's language: pure lookups, one table per backend."""
from __future__ import annotations

import logging

from utils.errors import ConfigError

logger = logging.getLogger(__name__)

# Parler's multilingual speakers, one per language (the names the reference project uses).
PARLER_SPEAKERS = {
    "en": "Jason", "fr": "Christine", "es": "Steven", "de": "Nicole",
    "pt": "Sophia", "pl": "Alex", "it": "Richard", "nl": "Mark",
}

# MeloTTS: language code -> (Melo language, speaker key in the model's spk2id).
MELO_VOICES = {
    "en": ("EN", "EN-US"), "fr": ("FR", "FR"), "es": ("ES", "ES"),
    "zh": ("ZH", "ZH"), "ja": ("JP", "JP"), "ko": ("KR", "KR"),
}

# facebook/mms-tts-<suffix>: ISO 639-1 (what Whisper reports) -> the ISO 639-3 code MMS names its models by.
MMS_LANGUAGES = {
    "en": "eng", "fr": "fra", "es": "spa", "de": "deu", "nl": "nld", "pt": "por", "pl": "pol",
    "ru": "rus", "uk": "ukr", "ko": "kor", "hi": "hin", "ar": "ara", "fi": "fin", "el": "ell",
    "he": "heb", "hu": "hun", "is": "isl", "id": "ind", "kk": "kaz", "lv": "lav", "mr": "mar",
    "fa": "fas", "ro": "ron", "sw": "swh", "sv": "swe", "tl": "tgl", "ta": "tam", "th": "tha",
    "tr": "tur", "ur": "urd", "vi": "vie", "cy": "cym", "bg": "bul", "ca": "cat", "kn": "kan",
    "ms": "zlm", "hy": "hyw",
}


def base_language(language: str | None) -> str | None:
    """'en-US', 'EN', 'en_gb' -> 'en'; None stays None."""
    if not language:
        return None
    return language.replace("_", "-").split("-")[0].lower()


def pick(table: dict, language: str | None, default_language: str, backend: str):
    """The table's entry for `language`, else for `default_language` (with a warning when a language
    was given but has no voice)."""
    code = base_language(language)
    if code in table:
        return table[code]
    fallback = base_language(default_language)
    if fallback not in table:
        raise ConfigError(f"{backend} has no voice for --tts_language '{default_language}'; choose one of: {', '.join(sorted(table))}")
    if code is not None:
        logger.warning("%s has no voice for language '%s'; speaking '%s' instead", backend, code, fallback)
    return table[fallback]


def parler_description(description: str, speaker: str) -> str:
    """Put `speaker` in the description: replace its first word when that is a speaker name
    ('Jenny speaks...' -> 'Jason speaks...'), else put the name in front."""
    first, _, rest = description.partition(" ")
    if first in PARLER_SPEAKERS.values() or first == "Jenny":
        return f"{speaker} {rest}"
    return f"{speaker} {description}"
