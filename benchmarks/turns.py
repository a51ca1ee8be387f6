#!/usr/bin/env python
"""Turn taking: does the assistant wait through a pause mid-sentence, and answer a finished question fast?

    python benchmarks/turns.py                         # both parts below, on turn_questions.txt
    python benchmarks/turns.py --part classify         # the end-of-turn candidates alone, offline
    python benchmarks/turns.py --questions_file benchmarks/turn_questions_heldout.txt   # 24 more questions
    python benchmarks/turns.py --part pipeline --voice espeak -- --speculative_silence_ms 100   # flags after -- go to the server

The questions (turn_questions.txt, none of them in questions.txt, on which Smart Turn's threshold was chosen;
Whisper's sentence-end threshold on both lists; --questions_file turn_questions_heldout.txt asks 24 more, which
only the choice to count the text's end in Whisper's sureness looked at) are said whole ("complete") and with a pause of 0.5-1.2 s where the '|' is
("paused": the whole sentence is synthesised and cut between two words, so its first part sounds like a sentence
that goes on).

classify: each candidate judges the first part of every paused question (should be: not finished) and every
complete question (should be: finished), as the server would at the speculative silence: Smart Turn v3.2 on
the audio; the bundled language model's probability of ending the user's message after the transcript; the
transcript's punctuation; and the combination the server uses (Smart Turn and punctuation).

pipeline: `s2s_pipeline.py` with --end_of_turn silence (before) and smart-turn (now), each asked the paused
questions in one conversation and the complete ones in a conversation and fresh (each on a new connection).
A cut-in is a reply that starts before the question's last voiced sample was sent; "whole" means the server's
USER line holds the words of both parts. Latency is from the question's last voiced sample to the reply's first
voiced sample at the client.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.measures import RATE, first_voice_s, percentile, voiced_span, words  # noqa: E402
from benchmarks.server import ServerProcess, free_port  # noqa: E402

logger = logging.getLogger("benchmarks.turns")

QUESTIONS_FILE = ROOT / "benchmarks" / "turn_questions.txt"
PAUSES_S = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)  # question k pauses PAUSES_S[k % 8]
TARGET_PAUSES_S = (0.6, 1.0)  # the range for cut-ins
LEAD_S = 0.5
VAD_PAD_S = 0.2  # the audio the VAD keeps after the voice (--speech_pad_ms): what the end-of-turn model hears
REPLY_TOKENS = "24"  # replies are cut short: a turn-taking run needs the start of each reply, not all of it
END_OF_TURN_MODES = ("silence", "smart-turn")
HEARD_WITHIN_S = 2.5  # after a question's end, the server's transcript of it has come (the next question comes later)


@dataclass
class Question:
    head: str
    tail: str
    pause_s: float

    @property
    def text(self) -> str:
        return f"{self.head} {self.tail}"


def load_questions(path: Path = QUESTIONS_FILE) -> list[Question]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    pairs = [line.split("|") for line in lines if line and not line.startswith("#")]
    return [Question(head.strip(), tail.strip(), PAUSES_S[k % len(PAUSES_S)]) for k, (head, tail) in enumerate(pairs)]


def speech(question: Question, voice: str, paused: bool) -> np.ndarray:
    """int16 speech trimmed to its voiced part; paused: with the pause at the '|'."""
    from tests.speech import espeak, hibari
    from tests.speech import paused as with_pause

    if paused:
        audio = with_pause(f"{question.head} | {question.tail}", question.pause_s, voice)
    else:
        audio = (hibari if voice == "hibari" else espeak)(question.text)
    first, last = voiced_span(audio)
    return audio[first:last + 1]


def head_part(audio: np.ndarray, pause_s: float) -> np.ndarray:
    """The speech before the pause of a paused question."""
    quiet = np.abs(audio.astype(np.int32)) <= 328
    run = int(pause_s * RATE * 0.9)
    ends = np.flatnonzero(np.convolve(quiet, np.ones(run, int), "valid") == run)
    return audio[:ends[0]] if len(ends) else audio


# --- classify: the candidates offline -------------------------------------------------------------------------

class Candidates:
    def __init__(self) -> None:
        from llama_cpp import Llama

        from arguments_classes.parsing import parse_arguments
        from LLM.bundled_model import bundled_model_path
        from VAD.end_of_turn import SmartTurnModel

        config = parse_arguments([])
        self.smart_turn = SmartTurnModel()
        self.stt = config.stt[0].load_handler()(None, None, None, setup_kwargs={"config": config.stt[1]})
        self.llm = Llama(model_path=bundled_model_path(), n_threads=2, n_ctx=512, verbose=False, logits_all=True)
        self.end_token = self.llm.tokenize(b"<|im_end|>", add_bos=False, special=True)[0]
        self.threshold = config.vad.end_of_turn_threshold
        self.text_threshold = config.vad.end_of_turn_text_threshold

    def judge(self, audio: np.ndarray) -> dict:
        from VAD.end_of_turn import ends_sentence

        samples = np.concatenate([audio, np.zeros(int(VAD_PAD_S * RATE), "<i2")]).astype(np.float32) / 32768
        text, _, sentence_end = self.stt.recognize_scored(samples)
        return {"transcript": text, "smart_turn": self.smart_turn.probability(samples),
                "llm_end": self.end_probability(text), "ends_sentence": ends_sentence(text),
                "sentence_end": sentence_end or 0.0}

    def end_probability(self, text: str) -> float:
        """P(<|im_end|>) right after the user's words: the language model's view of whether they are done."""
        prompt = f"<|im_start|>system\nYou are a helpful voice assistant.<|im_end|>\n<|im_start|>user\n{text}"
        self.llm.reset()
        self.llm.eval(self.llm.tokenize(prompt.encode(), special=True))
        logits = np.asarray(self.llm.scores[self.llm.n_tokens - 1], dtype=np.float64)
        return float(np.exp(logits[self.end_token] - np.logaddexp.reduce(logits)))


LLM_END_THRESHOLD = 0.01  # below: the language model expects more words (chosen on questions.txt)


def decisions(judged: dict, threshold: float, text_threshold: float) -> dict[str, bool]:
    """Each candidate's verdict: True = the turn is finished."""
    audio = judged["smart_turn"] >= threshold
    sure = judged["ends_sentence"] and judged["sentence_end"] >= text_threshold
    return {"smart turn": audio, "language model": judged["llm_end"] >= LLM_END_THRESHOLD,
            "punctuation": judged["ends_sentence"], "smart turn + punctuation": audio and judged["ends_sentence"],
            "smart turn + language model": audio and judged["llm_end"] >= LLM_END_THRESHOLD,
            "Whisper sure of its sentence end": sure, "smart turn + Whisper sure of its sentence end": audio and sure}


def classify(questions: list[Question], voices: list[str]) -> dict:
    candidates = Candidates()
    rows = []
    for voice in voices:
        for q in questions:
            whole = speech(q, voice, paused=False)
            head = head_part(speech(q, voice, paused=True), q.pause_s)
            for kind, audio in (("complete", whole), ("unfinished", head)):
                judged = candidates.judge(audio)
                rows.append({"voice": voice, "kind": kind, "question": q.text, **judged})
                logger.info("%s %s %r: smart turn %.2f, LM end %.3f, Whisper's sentence end %.3f, heard %r", voice,
                            kind, q.text, judged["smart_turn"], judged["llm_end"], judged["sentence_end"],
                            judged["transcript"])
    table = {}
    for voice in voices:
        thresholds = candidates.threshold, candidates.text_threshold
        for name in decisions(rows[0], *thresholds):
            verdicts = {kind: [decisions(r, *thresholds)[name] for r in rows if r["voice"] == voice and r["kind"] == kind]
                        for kind in ("complete", "unfinished")}
            table[(voice, name)] = (sum(verdicts["complete"]), len(verdicts["complete"]),
                                    sum(not v for v in verdicts["unfinished"]), len(verdicts["unfinished"]))
    return {"rows": rows, "table": table}


def format_classification(table: dict) -> str:
    lines = ["| voice | candidate | complete heard as finished | unfinished heard as unfinished |", "|---|---|---|---|"]
    for (voice, name), (done, n_done, waiting, n_waiting) in table.items():
        lines.append(f"| {voice} | {name} | {done}/{n_done} | {waiting}/{n_waiting} |")
    return "\n".join(lines)


# --- pipeline: the server, before and now ---------------------------------------------------------------------

def run_pipeline(questions: list[Question], voice: str, modes: list[str], server_flags: list[str]) -> dict:
    from listen_and_play import converse

    paused = [speech(q, voice, paused=True) for q in questions]
    whole = [speech(q, voice, paused=False) for q in questions]
    lead = np.zeros(int(LEAD_S * RATE), "<i2")
    results = {}
    for mode in modes:
        ports = (free_port(), free_port())
        metrics = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False).name
        flags = ["--recv_port", str(ports[0]), "--send_port", str(ports[1]), "--end_of_turn", mode,
                 "--lm_gen_max_tokens", REPLY_TOKENS, "--metrics_file", metrics, *server_flags]
        server = ServerProcess(flags)
        logger.info("%s: server ready in %.1f s", mode, server.startup_s)
        try:
            def conversation(audios):
                started = time.monotonic()
                out = converse("localhost", *ports, [np.concatenate([lead, a]) for a in audios], silence_s=40,
                               reply_idle_s=1.5, timeout_s=40)
                # A question's USER line comes after its voice ended (or, cut in, before), and well before the
                # next question is said (that waits for the whole reply to play).
                ends = [end for _, end in out]
                return [(reply, end, " ".join(server.user_lines_between(since, end + HEARD_WITHIN_S)))
                        for (reply, end), since in zip(out, [started] + [e + HEARD_WITHIN_S for e in ends[:-1]])]

            paused_turns = conversation(paused)
            complete_turns = conversation(whole)
            fresh_turns = []
            for audio in whole:
                fresh_turns += conversation([audio])
        finally:
            server.stop()
        results[mode] = {
            "paused": [turn_record(q, *t, paused=True) for q, t in zip(questions, paused_turns)],
            "complete": [turn_record(q, *t) for q, t in zip(questions, complete_turns)],
            "fresh": [turn_record(q, *t) for q, t in zip(questions, fresh_turns)],
            "server": [json.loads(line) for line in open(metrics, encoding="utf-8") if line.strip()],
        }
        for kind in ("paused", "complete", "fresh"):
            for r in results[mode][kind]:
                logger.info("%s %s %r: cut in %s, heard %r, voice %s ms", mode, kind, r["question"], r["cut_in"],
                            r["heard"], r["latency_ms"])
    return results


def turn_record(q: Question, reply, question_end: float, heard: str, paused: bool = False) -> dict:
    latency = first_voice_s(bytes(reply.audio), reply.arrivals, question_end)
    heard_words = set(words(heard))
    return {"question": q.text, "pause_s": q.pause_s if paused else 0.0, "heard": heard,
            "cut_in": reply.first_at is not None and reply.first_at < question_end,
            "whole": set(words(q.head)) <= heard_words and set(words(q.tail)) <= heard_words,
            "latency_ms": None if latency is None else round(latency * 1000)}


def summarize_pipeline(results: dict) -> str:
    lines = ["| end of turn | paused 0.6-1.0 s: cut-ins | all paused: cut-ins / whole | complete, conversation: median / p90 | complete, fresh: median / p90 | complete: cut-ins |",
             "|---|---|---|---|---|---|"]
    for mode, r in results.items():
        target = [t for t in r["paused"] if TARGET_PAUSES_S[0] <= t["pause_s"] <= TARGET_PAUSES_S[1]]

        def stats(turns):
            values = [t["latency_ms"] for t in turns if t["latency_ms"] is not None and not t["cut_in"]]
            return f"{percentile(values, 50):.0f} / {percentile(values, 90):.0f} ms ({len(values)})" if values else "-"

        complete = r["complete"] + r["fresh"]
        lines.append(f"| {mode} | {sum(t['cut_in'] for t in target)}/{len(target)} | "
                     f"{sum(t['cut_in'] for t in r['paused'])}/{len(r['paused'])} / {sum(t['whole'] for t in r['paused'])}/{len(r['paused'])} | "
                     f"{stats(r['complete'])} | {stats(r['fresh'])} | {sum(t['cut_in'] for t in complete)}/{len(complete)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    server_flags = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("classify", "pipeline", "both"), default="both")
    parser.add_argument("--voice", choices=("hibari", "espeak", "both"), default="hibari",
                        help="the voice that asks (classify: both by default)")
    parser.add_argument("--modes", default=",".join(END_OF_TURN_MODES), help="--end_of_turn values to run the server with")
    parser.add_argument("--questions", type=int, default=None, help="only the first N questions")
    parser.add_argument("--questions_file", type=Path, default=QUESTIONS_FILE,
                        help="'head | tail' lines (turn_questions_heldout.txt: 24 more questions)")
    parser.add_argument("--json", help="write every measurement here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    questions = load_questions(args.questions_file)[:args.questions]
    out = {}
    if args.part in ("classify", "both"):
        voices = ["hibari", "espeak"] if args.voice == "both" or "--voice" not in argv else [args.voice]
        classified = classify(questions, voices)
        out["classify"] = classified["rows"]
        print("\nEnd-of-turn candidates, first part of each paused question and each complete question:\n")
        print(format_classification(classified["table"]))
    if args.part in ("pipeline", "both"):
        voice = "hibari" if args.voice == "both" else args.voice
        results = run_pipeline(questions, voice, args.modes.split(","), server_flags)
        out["pipeline"] = results
        print(f"\nThe server, {len(questions)} questions said by {voice}, end of speech -> first reply sound at the client:\n")
        print(summarize_pipeline(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
