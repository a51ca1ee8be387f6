#!/usr/bin/env python
"""Right answers to the factual questions, asked fresh and late in a conversation (text only, no audio).

    python benchmarks/answers.py                                  # the server's default language model
    python benchmarks/answers.py --json out.json -- --chat_size 4  # flags after -- as s2s_pipeline.py takes them

The language model is loaded as the server loads it, from the same flags, and driven as the server drives
it: a Transcript per turn through the handler's process(), each turn confirmed, so the handler records the
exchange in the conversation's history. Each fact of questions.txt (a line `question | keyword, ...`) is asked
  fresh: as the first question of a new conversation;
  late:  at turn 6 or later of one conversation that asks the whole list in order, after an opening of small
         talk with a question in Spanish at turn 2, labelled Spanish as the STT labels it with --language auto
         (--no_spanish leaves it out). The model sees the last --chat_size exchanges of the conversation.
A reply is right when it holds one of its question's keywords (whole words, any case). The language leak is
the share of English replies after the Spanish turn that hold common Spanish words (benchmarks/questions.py).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.questions import (  # noqa: E402
    QUESTIONS_FILE,
    Question,
    answered_right,
    load_questions,
    sounds_spanish,
    spanish_word_count,
)
from benchmarks.report import TURN_BUCKETS  # noqa: E402

logger = logging.getLogger("benchmarks.answers")

LATE_FROM = TURN_BUCKETS[-1][1]  # the first turn of the last bucket of latency.py: "late" means the same there
SPANISH = Question("¿Cuál es la capital de España?", ("Madrid",))
SPANISH_TURN = 2
REPLY_SHOWN_CHARS = 90


@dataclass
class Answer:
    question: str
    keywords: tuple[str, ...]
    turn: int  # 1 for every fresh question
    language: str
    reply: str
    right: bool | None  # None: not a fact
    spanish_words: int


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, server_flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [--questions FILE] [--no_spanish] [--json out.json] [-- <server flags>...]")
    p.add_argument("--questions", default=str(QUESTIONS_FILE), help="one question a line (see benchmarks/questions.py)")
    p.add_argument("--no_spanish", action="store_true", help="no Spanish question at turn 2 of the late conversation")
    p.add_argument("--json", help="also write the shares and every reply here")
    p.add_argument("--orders", type=int, default=1,
                   help="late conversations to hold, the questions after the opening in a different order in each "
                        "(the first in the list's order): one conversation's score moves by a question or two")
    return p.parse_args(ours), server_flags


def conversation_order(questions: list[Question], spanish: Question | None = SPANISH, late_from: int = LATE_FROM,
                       spanish_turn: int = SPANISH_TURN, seed: int = 0) -> list[tuple[Question, str]]:
    """(question, language) per turn: an opening of the first small-talk questions (and `spanish` at
    `spanish_turn`) up to turn `late_from` - 1, then every other question in the list's order (`seed` 0)
    or shuffled by `seed`."""
    import random

    opening_size = late_from - 1 - (spanish is not None)
    opening = [i for i, q in enumerate(questions) if not q.is_fact][:max(0, opening_size)]
    rest = [i for i in range(len(questions)) if i not in opening]
    if seed:
        random.Random(seed).shuffle(rest)
    order = opening + rest
    turns = [(questions[i], "en") for i in order]
    if spanish is not None:
        turns.insert(spanish_turn - 1, (spanish, "es"))
    return turns


def answer(question: Question, turn: int, language: str, reply: str) -> Answer:
    right = answered_right(reply, question.keywords) if question.is_fact else None
    return Answer(question.text, question.keywords, turn, language, reply, right, spanish_word_count(reply))


def score(fresh: list[Answer], late: list[Answer], late_from: int = LATE_FROM) -> dict:
    """Shares of right answers over the facts asked late in English, and over the same facts asked fresh."""
    late_facts = [a for a in late if a.right is not None and a.turn >= late_from and a.language == "en"]
    fresh_by_question = {a.question: a for a in fresh}
    fresh_facts = [fresh_by_question[a.question] for a in late_facts if a.question in fresh_by_question]
    spanish_turns = [a.turn for a in late if a.language != "en"]
    after_spanish = [a for a in late if a.language == "en" and a.turn > min(spanish_turns, default=0)]

    def share(answers: list[Answer], test) -> dict:
        hits = sum(bool(test(a)) for a in answers)
        return {"count": hits, "of": len(answers), "share": round(hits / len(answers), 4) if answers else None}

    result = {
        "fresh": share(fresh_facts, lambda a: a.right), "late": share(late_facts, lambda a: a.right),
        "fresh_leak": share(fresh, lambda a: sounds_spanish(a.reply)),
        "late_leak": share(after_spanish, lambda a: sounds_spanish(a.reply)),
        "spanish_right": next((a.right for a in late if a.language != "en"), None),
    }
    both = result["fresh"]["share"] is not None and result["late"]["share"] is not None
    result["difference_points"] = round(100 * (result["late"]["share"] - result["fresh"]["share"]), 1) if both else None
    return result


def load_llm(flags: list[str]):
    """The server's language-model handler, built from the server's flags."""
    from arguments_classes.parsing import parse_arguments
    from utils import console

    console.console.quiet = True  # the handler prints ASSISTANT lines; the benchmark prints its tables
    backend, config = parse_arguments(flags).llm
    logger.info("loading the %s language model", backend.name)
    return backend.load_handler()(threading.Event(), None, None, setup_kwargs={"config": config})


def reply_to(handler, conversation, text: str, language: str) -> str:
    from utils.pipeline.messages import Transcript, Turn

    # A confirmed turn, as the VAD confirms one: the handler records the exchange in the history when the reply ends.
    turn = Turn(conversation, speech_end=time.monotonic())
    return " ".join(s.text.strip() for s in handler.process(Transcript(text, language, turn)) if s.text.strip())


def ask_all(handler, questions: list[Question], spanish: Question | None = SPANISH,
            orders: int = 1) -> tuple[list[Answer], list[Answer]]:
    """The facts asked fresh, and every conversation's turns one after the other (`orders` conversations)."""
    from utils.pipeline.messages import Conversation

    fresh = [answer(q, 1, "en", reply_to(handler, Conversation(), q.text, "en")) for q in questions if q.is_fact]
    late = []
    for seed in range(orders):
        conversation = Conversation()
        for turn, (q, language) in enumerate(conversation_order(questions, spanish, seed=seed), 1):
            late.append(answer(q, turn, language, reply_to(handler, conversation, q.text, language)))
            logger.info("conversation %d, turn %d: %s -> %s", seed + 1, turn, q.text, late[-1].reply)
    return fresh, late


def _share(s: dict) -> str:
    return f"{s['count']}/{s['of']}" + (f" ({100 * s['share']:.1f}%)" if s["share"] is not None else "")


def format_report(scores: dict, fresh: list[Answer], late: list[Answer], command: str) -> str:
    first_late = min((a.turn for a in late if a.right is not None and a.turn >= LATE_FROM), default=None)
    spanish = scores["spanish_right"] is not None
    lines = [
        "| asked | right answers | replies with Spanish words |", "|---|---|---|",
        f"| fresh: each as the first question of a new conversation | {_share(scores['fresh'])} | {_share(scores['fresh_leak'])} |",
        f"| late: turns {first_late}-{max(a.turn for a in late)} of {len({a.turn for a in late if a.turn == 1}) and sum(a.turn == 1 for a in late)} conversation(s) | {_share(scores['late'])} | "
        f"{_share(scores['late_leak'])} ({'English replies after the Spanish turn' if spanish else 'all replies'}) |",
        "",
        f"late - fresh: {_fmt_points(scores['difference_points'])}" + (
            f"; the Spanish question at turn {SPANISH_TURN} ({SPANISH.text}) answered right: {_mark(scores['spanish_right'])}"
            if spanish else ""),
        f"command: {command}",
        "",
        "| question | fresh | late: turn | late reply |", "|---|---|---|---|",
    ]
    fresh_by_question = {a.question: a for a in fresh}
    for a in late:
        if a.right is None:
            continue
        before = fresh_by_question.get(a.question)
        shown = a.reply if len(a.reply) <= REPLY_SHOWN_CHARS else a.reply[:REPLY_SHOWN_CHARS - 1] + "…"
        lines.append(f"| {a.question} | {_mark(before.right if before else None)} | {_mark(a.right)} {a.turn} | {shown} |")
    return "\n".join(lines)


def _fmt_points(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f} points"


def _mark(right: bool | None) -> str:
    return {True: "right", False: "wrong", None: "n/a"}[right]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args, server_flags = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from utils.errors import ConfigError

    questions = load_questions(args.questions)
    if not any(q.is_fact for q in questions):
        print(f"error: {args.questions} has no facts (lines `question | keyword, ...`)", file=sys.stderr)
        return 2
    try:
        handler = load_llm(server_flags)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    started = time.monotonic()
    fresh, late = ask_all(handler, questions, None if args.no_spanish else SPANISH, args.orders)
    logger.info("%d replies in %.1f s", len(fresh) + len(late), time.monotonic() - started)
    scores = score(fresh, late)
    command = shlex.join(["python3", "benchmarks/answers.py", *argv])
    print(format_report(scores, fresh, late, command))
    if args.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "server_flags": server_flags, "scores": scores,
                  "fresh": [asdict(a) for a in fresh], "late": [asdict(a) for a in late]}
        Path(args.json).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        logger.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
