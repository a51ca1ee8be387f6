"""Streaming sentence splitting: tokens in, complete sentences out, as early as they are certain."""
from __future__ import annotations

import logging
import re
from functools import lru_cache

logger = logging.getLogger(__name__)

# Used when nltk's trained punkt data is absent (it downloads at run time, which fails offline).
COMMON_ABBREVIATIONS = {
    "dr", "mr", "mrs", "ms", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "no", "fig",
    "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec", "mt", "ft", "u.s", "u.k", "a.m", "p.m",
}


@lru_cache(maxsize=None)
def sentence_tokenizer(language: str = "english"):
    """nltk's trained punkt for `language` when its data is installed, else an offline fallback."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    try:
        from nltk.tokenize.punkt import PunktTokenizer

        return PunktTokenizer(language)
    except (LookupError, ImportError, OSError, ValueError):
        logger.debug("nltk punkt data for %s not found; using the built-in abbreviation list", language)
    params = PunktParameters()
    params.abbrev_types = set(COMMON_ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


_CLAUSE_END = re.compile(r"[,;:](?=\s)")
# A clause mark that ends the text so far is one too, unless a digit is before it ("2,|150"): the voice need not
# wait for the model's next piece to show the space after it.
_CLAUSE_END_NOW = re.compile(r"(?<!\d)[,;:]$")
# The text so far ends a sentence: its last word, then . ? or ! and maybe closing quotes or brackets.
_SENTENCE_END_NOW = re.compile(r"(\S*?)([.?!]+)[\"'”’)\]]*$")
FIRST_PHRASE_MAX_WORDS = 14
FIRST_PHRASE_MAX_PIECES = 14  # or this many pieces from the model (numbers take a token a digit), whichever is first
# Words that open a new phrase ("The sky is blue | because of...", "The tallest mountain | in the world is..."): a
# reply's first sentence without a comma may go to the voice before one of them, once it has PHRASE_BREAK_MIN_WORDS
# words, instead of waiting for its end. Prepositions count since most short answers have no other break before
# their end ("The capital of France is Paris."): on the bundled model's replies to the benchmarks' 78 questions,
# the first phrase came after a median 6 pieces (p90 9) instead of 8 (p90 14), ~20 ms a piece on a 2-core CPU.
# Not verbs: "Cats purr when they | are happy" breaks a clause where a listener hears none.
PHRASE_OPENERS = frozenset(
    "that which who whose because and but or so to by from with when where while if than as for "
    "in of on at about into onto during between through after before".split()
)
PHRASE_BREAK_MIN_WORDS = 3
# And before the verb that follows a subject of PHRASE_BREAK_MIN_WORDS words or more ("The Great Barrier Reef | is
# located...", "The speed of sound | is approximately..."): where a listener hears the subject end. Not after a
# pronoun ("Cats purr when they | are happy" breaks where no one pauses), nor after "there", "here" or a question word.
SUBJECT_VERBS = frozenset("is are was were has have".split())
NOT_A_SUBJECT = frozenset(
    "i you he she it we they this that these those there here what who which where when how why".split()
)


class SentenceSplitter:
    """`push(text)` returns the sentences completed so far; `flush()` returns what remains.

    A sentence is released once the next one has started, so an abbreviation or a decimal point
    at the end of the buffer is never mistaken for a sentence end. With `first_phrase_words`, the
    reply's first piece may be a clause (up to a comma, semicolon or colon followed by a space) of at
    least that many words, or the words before a phrase opener ("because", "that", "to"...): the voice can
    start on it while the rest of the sentence is written.
    """

    def __init__(self, tokenizer=None, first_phrase_words: int = 0) -> None:
        self.tokenizer = tokenizer or sentence_tokenizer()
        self.first_phrase_words = first_phrase_words
        self.buffer = ""
        self.released = False
        self.pieces = 0  # pushed so far

    def push(self, text: str) -> list[str]:
        self.buffer += text
        self.pieces += 1
        spans = list(self.tokenizer.span_tokenize(self.buffer))
        if len(spans) < 2:
            return self._first_phrase()
        done = [self.buffer[start:end].strip() for start, end in spans[:-1]]
        self.buffer = self.buffer[spans[-1][0]:]
        done = [s for s in done if s]
        self.released = self.released or bool(done)
        return done

    def _first_phrase(self) -> list[str]:
        if self.released or not self.first_phrase_words:
            return []
        if self._ends_now():
            phrase, self.buffer, self.released = self.buffer.strip(), "", True
            return [phrase]
        for match in _CLAUSE_END.finditer(self.buffer):
            phrase = self.buffer[:match.end()].strip()
            if len(phrase.split()) >= self.first_phrase_words:
                self.buffer = self.buffer[match.end():].lstrip()
                self.released = True
                return [phrase]
        spans = list(re.finditer(r"\S+", self.buffer))  # the words, where they are in the buffer
        phrase = self._before_opener(spans)
        if phrase:
            return [phrase]
        # A reply whose start has no clause or sentence end (a run-on, a list without punctuation) would keep
        # the voice waiting for all of it (1.4 s was seen): past this many whole words, they go as they are.
        long = self.pieces > FIRST_PHRASE_MAX_PIECES and len(spans) > PHRASE_BREAK_MIN_WORDS
        if len(spans) > FIRST_PHRASE_MAX_WORDS or long:
            cut = len(spans) if self.buffer[-1:].isspace() else len(spans) - 1  # the last word may still be growing
            if cut > PHRASE_BREAK_MIN_WORDS and spans[cut - 1].group().lower() in PHRASE_OPENERS:
                cut -= 1  # "... miles away | from the Earth": an opener starts the next piece
            rest = spans[cut].start() if cut < len(spans) else len(self.buffer)
            phrase, self.buffer, self.released = self.buffer[:rest].strip(), self.buffer[rest:], True
            return [" ".join(phrase.split())]
        return []

    def _ends_now(self) -> bool:
        """The first phrase is already whole: the text ends a sentence ("...is Paris.", "Really?") or a clause of
        enough words, and the next piece cannot change that. Not after a number ("7." may become "7.5"), an
        abbreviation ("Dr."), an initial ("J.") or in an ellipsis, which the sentence tokenizer judges once more
        text has come."""
        text = self.buffer.strip()
        if _CLAUSE_END_NOW.search(text):
            return len(text.split()) >= self.first_phrase_words
        match = _SENTENCE_END_NOW.search(text)
        if match is None:
            return False
        word, marks = match.group(1).lower().lstrip("\"'“‘([").rstrip("."), match.group(2)
        if marks != "." and set(marks) <= set("?!"):
            return True
        return marks == "." and len(word) > 1 and word[-1].isalpha() and "." not in word and word not in COMMON_ABBREVIATIONS

    def _before_opener(self, words: list[re.Match]) -> str:
        """The words before the first phrase opener that follows PHRASE_BREAK_MIN_WORDS words, once the opener is
        whole (a word follows it: " by" may be the start of " bystander"); "" if there is none yet."""
        for i in range(PHRASE_BREAK_MIN_WORDS, len(words) - 1):
            word, before = words[i].group().lower(), words[i - 1].group().lower()
            if word in PHRASE_OPENERS or (word in SUBJECT_VERBS and before not in NOT_A_SUBJECT):
                phrase = self.buffer[:words[i].start()].strip()
                self.buffer, self.released = self.buffer[words[i].start():], True
                return phrase
        return ""

    def flush(self) -> str:
        rest, self.buffer = self.buffer.strip(), ""
        return rest
