"""The user's language, told to the model: with --language auto the transcript carries it, and every backend is
asked to answer in it when it is not English."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def language_name(code: str) -> str:
    """'fr' -> 'French', for the codes Whisper detects; an unknown code is returned as it is."""
    try:
        from transformers.models.whisper.tokenization_whisper import LANGUAGES
    except ImportError:  # the table is a convenience: the code alone still tells the model
        return code
    name = LANGUAGES.get(code.split("-")[0].lower())
    return name.title() if name else code


def answer_language_instruction(language: str | None) -> str | None:
    """What to tell the model so it answers in the user's language. None for English (or unknown): the
    system prompt is English, so the model answers in English anyway (exchanges in another language are
    dropped from the history first: Chat.keep_language)."""
    if not language or language.split("-")[0].lower() == "en":
        return None
    return f"Answer in {language_name(language)}."


def question_with_instruction(text: str, instruction: str | None) -> str:
    """The user's message with the answer-language instruction after it. It goes with the question, not
    the system prompt: the prompt's start stays the same from turn to turn (a backend's cached prefix stays
    valid) and the instruction sits next to the question it is about."""
    return f"{text} ({instruction})" if instruction else text
