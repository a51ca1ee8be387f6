"""The benchmarks' questions and how a reply is checked against the facts among them.

questions.txt holds one question a line. A fact carries the words a right answer contains after a `|`:

    What is the capital of France? | Paris
    How many days are in a week? | seven, 7

Blank lines and lines starting with `#` are skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

QUESTIONS_FILE = Path(__file__).with_name("questions.txt")

# Frequent Spanish words, less those that are English words too ("son", "a", "no"). One alone proves little
# ("El Niño", "La Paz"), so a reply counts as Spanish from SPANISH_LEAK_WORDS of them on.
SPANISH_WORDS = frozenset(
    "el la los las un una unos es está están esta este esto eso del al de en y por para que qué con pero muy "
    "más hay puedo puede su sus también hola gracias sí".split()
)
SPANISH_LEAK_WORDS = 2


@dataclass(frozen=True)
class Question:
    text: str
    keywords: tuple[str, ...] = ()  # any one of them in a reply makes it right; none: not a fact

    @property
    def is_fact(self) -> bool:
        return bool(self.keywords)


def parse_questions(lines: Iterable[str]) -> list[Question]:
    questions = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        text, _, answer = line.partition("|")
        keywords = tuple(k.strip() for k in answer.split(",") if k.strip())
        if not text.strip():
            raise ValueError(f"a keyword line without its question: {line!r}")
        questions.append(Question(text.strip(), keywords))
    return questions


def load_questions(path: str | Path = QUESTIONS_FILE) -> list[Question]:
    return parse_questions(Path(path).read_text(encoding="utf-8").splitlines())


def answered_right(reply: str, keywords: Iterable[str]) -> bool:
    """Some keyword is in the reply as whole words, whatever the case ("7" is not found in "17")."""
    return any(re.search(rf"(?<!\w){re.escape(k)}(?!\w)", reply, re.IGNORECASE) for k in keywords)


def spanish_word_count(text: str) -> int:
    return sum(word in SPANISH_WORDS for word in re.findall(r"[^\W\d_]+", text.lower()))


def sounds_spanish(text: str) -> bool:
    return spanish_word_count(text) >= SPANISH_LEAK_WORDS
