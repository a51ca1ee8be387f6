#!/usr/bin/env python
"""Voice-to-voice latency of the server, measured at the client, turn by turn of a conversation.

    python benchmarks/latency.py                          # a conversation, then each question fresh; one run
    python benchmarks/latency.py --mode conversation --runs 3 --json out.json -- --chat_size 4   # flags after -- go to the server
    python benchmarks/latency.py --mode fresh --floors    # each question fresh, against each stage alone

It starts `s2s_pipeline.py` (socket mode, on free ports unless you give --recv_port/--send_port) and says each
question of questions.txt (espeak-ng, no trailing silence; the client streams silence after it) at real-time
pace. Voice-to-voice latency is the time the reply's first non-silent sample plays at the client (playback
starts as the reply arrives) minus the time the question's last non-silent sample was sent.

--mode conversation asks every question, in order, on one connection, as a person talking to the assistant
would: each after the whole previous reply has played, so each turn's prompt holds the history. --mode fresh
asks each on a new connection (no history), in the same order: at the same place in the list, the difference
is what the history costs. --mode both (the default) runs the conversation, then the fresh questions.
Latency is reported by turn (1, 2-5, 6+) with its least-squares slope per turn, and so are the server's own
marks (--metrics_file: transcript, first token, first sentence, first audio sent after its end of speech).
--floors then stops the server and runs each stage alone on the same questions (the floor of the design).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.floors import StageRunner, start_wait_s, vad_wait_s  # noqa: E402
from benchmarks.measures import RATE, first_voice_s, voiced_span, word_error_rate  # noqa: E402
from benchmarks.questions import QUESTIONS_FILE, load_questions  # noqa: E402
from benchmarks.report import (  # noqa: E402
    TurnResult,
    format_marks_table,
    format_questions,
    format_table,
    format_turn_table,
    format_turns,
    marks_by_bucket,
    match_marks,
    summarize,
    summarize_turns,
)
from benchmarks.server import ServerError, ServerProcess, free_port  # noqa: E402

logger = logging.getLogger("benchmarks.latency")

MODES = ("conversation", "fresh")
LEAD_SILENCE_S = 0.5  # before each question, so the VAD has heard silence first
REPLY_WAIT_S = 8.0  # after the question: ample for the first words; longer replies are cut here to bound the run
REPLY_IDLE_S = 1.0  # quiet after the reply's end that ends a question
PAUSE_S = 1.0  # between questions: lets the server drop what it still does for a cut-off reply
# In a conversation the whole reply is heard before the next question (96 tokens are ~25 s of speech): a reply
# cut short would play its tail into the next turn. A pause between two sentences must not pass for its end.
CONVERSATION_REPLY_WAIT_S = 45.0
CONVERSATION_REPLY_IDLE_S = 2.0


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, server_flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [--mode M] [--runs N] [--floors] [--json out.json] [-- <server flags>...]")
    p.add_argument("--mode", choices=(*MODES, "both"), default="both",
                   help="every question on one connection, each on a new one, or the first then the second")
    p.add_argument("--runs", type=int, default=1, help="times each question is asked (and each stage timed)")
    p.add_argument("--floors", action="store_true", help="then time each stage alone on the questions (the floor)")
    p.add_argument("--floor_repeats", type=int, default=3, help="tries of each stage per question; the floor takes the fastest")
    p.add_argument("--json", help="also write the summary and every measurement here")
    p.add_argument("--questions", default=str(QUESTIONS_FILE), help="one question a line (see benchmarks/questions.py)")
    p.add_argument("--voice", choices=("espeak", "hibari"), default="espeak",
                   help="who asks: espeak-ng (robotic: the end-of-turn model, trained on people, mostly waits "
                        "--max_turn_silence_ms for it; pass -- --end_of_turn silence to time the rest) or hibari")
    return p.parse_args(ours), server_flags


def with_bench_flags(flags: list[str], metrics_file: str) -> list[str]:
    """Free ports (a server may already be on the defaults) and a metrics file, unless the flags say otherwise.
    A JSON config file stays the only argument, as s2s_pipeline.py requires."""
    if len(flags) == 1 and flags[0].endswith(".json"):
        return flags
    given = {flag[2:].split("=")[0] for flag in flags if flag.startswith("--")}
    extra = []
    for name in ("recv_port", "send_port"):
        if name not in given:
            extra += [f"--{name}", str(free_port())]
    if "metrics_file" not in given:
        extra += ["--metrics_file", metrics_file]
    return flags + extra


def spoken_questions(path: str, voice: str = "espeak") -> list[tuple[str, np.ndarray]]:
    """(text, int16 speech trimmed to its voiced part) for each question."""
    from tests.speech import espeak, hibari

    questions = []
    for question in load_questions(path):
        audio = (hibari if voice == "hibari" else espeak)(question.text)
        first, last = voiced_span(audio)
        questions.append((question.text, audio[first:last + 1]))
    return questions


def with_lead(speech: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros(int(LEAD_SILENCE_S * RATE), "<i2"), speech])


def ask(server: ServerProcess, host: str, ports: tuple[int, int], question: str, speech: np.ndarray, run: int,
        turn: int = 1) -> TurnResult:
    """One question on a new connection; `turn` is its place in the list."""
    from listen_and_play import talk_with_file

    audio = with_lead(speech)
    heard_before = len(server.user_lines())
    reply, question_end = talk_with_file(host, *ports, audio, reply_idle_s=REPLY_IDLE_S,
                                         timeout_s=len(audio) / RATE + REPLY_WAIT_S)
    return TurnResult(
        question, run,
        heard_s=first_voice_s(bytes(reply.audio), reply.arrivals, question_end),
        first_byte_s=reply.first_at - question_end if reply.first_at else None,
        heard=" ".join(server.user_lines()[heard_before:]),
        question_end_clock=question_end, turn=turn, mode="fresh",
    )


def converse_all(server: ServerProcess, host: str, ports: tuple[int, int], questions, run: int) -> list[TurnResult]:
    """Every question, in order, on one connection: one conversation."""
    from listen_and_play import converse

    audios = [with_lead(speech) for _, speech in questions]
    wait_s = max(len(a) for a in audios) / RATE + CONVERSATION_REPLY_WAIT_S
    results = converse(host, *ports, audios, silence_s=wait_s, reply_idle_s=CONVERSATION_REPLY_IDLE_S, timeout_s=wait_s)
    if len(results) < len(questions):
        logger.warning("the server ended the conversation after %d of %d questions", len(results), len(questions))
    # A question's transcript comes after its voice began and before the next one's began (half-duplex):
    # that is how the server's USER lines are told apart by turn.
    starts = [end - len(speech) / RATE for (_, end), (_, speech) in zip(results, questions)] + [float("inf")]
    return [TurnResult(
        text, run,
        heard_s=first_voice_s(bytes(reply.audio), reply.arrivals, end),
        first_byte_s=reply.first_at - end if reply.first_at else None,
        heard=" ".join(server.user_lines_between(starts[k], starts[k + 1])),
        question_end_clock=end, turn=k + 1, mode="conversation",
    ) for k, ((reply, end), (text, _)) in enumerate(zip(results, questions))]


def log_turn(turn: TurnResult) -> None:
    logger.info("%s, run %d, turn %d, %r: heard '%s', voice %s ms after the question", turn.mode, turn.run + 1,
                turn.turn, turn.question, turn.heard, "never" if turn.heard_s is None else f"{turn.heard_s * 1000:.0f}")


def read_metrics(path: str | None, offset: int) -> list[dict]:
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        f.seek(offset)
        return [json.loads(line) for line in f if line.strip()]


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start"


def run_server(flags: list[str], config, questions, runs: int, modes=MODES) -> tuple[list[TurnResult], dict]:
    host = config.receiver.recv_host if config.receiver.recv_host not in ("0.0.0.0", "", "::") else "localhost"
    ports = (config.receiver.recv_port, config.sender.send_port)
    logger.info("starting the server: s2s_pipeline.py %s", " ".join(flags))
    server = ServerProcess(flags)
    logger.info("server ready in %.1f s", server.startup_s)
    turns = []
    try:
        for run in range(runs):
            if "conversation" in modes:
                logger.info("run %d: a conversation of %d questions on one connection", run + 1, len(questions))
                conversation = converse_all(server, host, ports, questions, run)
                for turn in conversation:
                    log_turn(turn)
                turns += conversation
                time.sleep(PAUSE_S)
            if "fresh" in modes:
                for k, (text, speech) in enumerate(questions, 1):
                    turns.append(ask(server, host, ports, text, speech, run, turn=k))
                    log_turn(turns[-1])
                    time.sleep(PAUSE_S)
        peak_mb = server.peak_memory_mb()
    finally:
        code = server.stop()
    if code != 0:
        logger.warning("the server exited with code %s", code)
    return turns, {"startup_s": round(server.startup_s, 2), "peak_memory_mb": peak_mb and round(peak_mb)}


def run_floors(config, questions, repeats: int) -> list:
    logger.info("loading the stages in this process for the floor; best of %d tries per question", repeats)
    runner = StageRunner(config)
    return runner.best_of(repeats, questions)


def footer(turns_by_mode: dict[str, list[TurnResult]], questions, runs: int, server: dict, machine_line: str) -> str:
    wer = ", ".join(f"{mode} {word_error_rate([t.question for t in ts], [t.heard for t in ts]):.3f}"
                    for mode, ts in turns_by_mode.items() if ts)
    return (f"{len(questions)} questions, {runs} run(s); STT word error rate on what the server heard: {wer or 'n/a'}; "
            f"server start-up {server['startup_s']} s, peak memory (VmHWM) {server['peak_memory_mb']} MB; "
            f"machine: {machine_line}")


def floor_summary(turns: list[TurnResult], floors, server_marks: list[dict], vad_config, server: dict, machine_line: str) -> dict:
    """The floor table of the turns without history (the stages alone have none), with their own server records."""
    matched = match_marks(turns, server_marks)
    marks = matched if all(matched) else [m for m in matched if m]  # vad_lags pairs them in order only when complete
    return {**summarize(turns, floors, vad_wait_s(vad_config), marks, start_wait_s(vad_config)), **server,
            "machine": machine_line}


def main(argv: list[str] | None = None) -> int:
    args, server_flags = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per transcription otherwise
    from arguments_classes.parsing import parse_arguments
    from listen_and_play import ClientError
    from utils.errors import ConfigError

    modes = MODES if args.mode == "both" else (args.mode,)
    started_on = machine()
    with tempfile.TemporaryDirectory() as tmp:
        flags = with_bench_flags(server_flags, os.path.join(tmp, "metrics.jsonl"))
        try:
            config = parse_arguments(flags)
            questions = spoken_questions(args.questions, args.voice)
            metrics_offset = os.path.getsize(config.module.metrics_file) if config.module.metrics_file and \
                os.path.exists(config.module.metrics_file) else 0
            turns, server = run_server(flags, config, questions, args.runs, modes)
            server_marks = read_metrics(config.module.metrics_file, metrics_offset)
            floors = run_floors(config, questions, args.floor_repeats) if args.floors else []
        except (ConfigError, ServerError, ClientError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    machine_line = f"{started_on}, {os.getloadavg()[0]:.2f} at end"
    by_mode = {mode: [t for t in turns if t.mode == mode] for mode in modes}
    summaries = {mode: summarize_turns(ts) for mode, ts in by_mode.items()}
    marks = {mode: marks_by_bucket(ts, server_marks) for mode, ts in by_mode.items()}
    print(format_turn_table(summaries))
    print("\nThe server's marks, median ms after its end of speech:\n" + format_marks_table(marks))
    print("\n" + format_turns(turns))
    print("\n" + footer(by_mode, questions, args.runs, server, machine_line))
    detail = None
    if args.floors:
        without_history = by_mode.get("fresh") or turns
        detail = floor_summary(without_history, floors, server_marks, config.vad, server, machine_line)
        print("\n" + format_table(detail))
        print("\n" + format_questions(without_history, floors, vad_wait_s(config.vad), start_wait_s(config.vad)))
    if args.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "server_flags": server_flags, "modes": list(modes),
                  "by_turn": summaries, "server_marks_by_turn": marks, **server, "machine": machine_line,
                  "floor_summary": detail, "turns": [asdict(t) for t in turns], "floors": [asdict(f) for f in floors],
                  "server_marks": server_marks}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        logger.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
