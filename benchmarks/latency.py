#!/usr/bin/env python
"""Voice-to-voice latency of the server, measured at the client, against the floor of its stages.

    python benchmarks/latency.py                          # default configuration, one run of each question
    python benchmarks/latency.py --runs 3 --json out.json -- --lm_gen_max_tokens 48   # flags after -- go to the server

It starts `s2s_pipeline.py` (socket mode, on free ports unless you give --recv_port/--send_port), says each
question of questions.txt (espeak-ng, no trailing silence; the client streams silence after it) at real-time
pace, and takes voice-to-voice latency as: the time the reply's first non-silent sample plays at the client
(playback starts as the reply arrives) minus the time the question's last non-silent sample was sent.
Then, with the server stopped, it runs each stage alone on the same questions (the floor).
Each question is a new connection, so a new conversation: no history.
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
from benchmarks.measures import RATE, sample_times, voiced_span  # noqa: E402
from benchmarks.report import TurnResult, format_questions, format_table, summarize  # noqa: E402
from benchmarks.server import ServerError, ServerProcess, free_port  # noqa: E402

logger = logging.getLogger("benchmarks.latency")

QUESTIONS_FILE = Path(__file__).with_name("questions.txt")
LEAD_SILENCE_S = 0.5  # before each question, so the VAD has heard silence first
REPLY_WAIT_S = 8.0  # after the question: ample for the first words; longer replies are cut here to bound the run
REPLY_IDLE_S = 1.0  # quiet after the reply's end that ends a question
PAUSE_S = 1.0  # between questions: lets the server drop what it still does for a cut-off reply


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, server_flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [--runs N] [--json out.json] [-- <server flags>...]")
    p.add_argument("--runs", type=int, default=1, help="times each question is asked (and each stage timed)")
    p.add_argument("--floor_repeats", type=int, default=3, help="tries of each stage per question; the floor takes the fastest")
    p.add_argument("--json", help="also write the summary and every measurement here")
    p.add_argument("--questions", default=str(QUESTIONS_FILE), help="one question a line")
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


def spoken_questions(path: str) -> list[tuple[str, np.ndarray]]:
    """(text, int16 speech trimmed to its voiced part) for each question."""
    from tests.speech import espeak

    questions = []
    for text in Path(path).read_text(encoding="utf-8").splitlines():
        if text.strip():
            audio = espeak(text.strip())
            first, last = voiced_span(audio)
            questions.append((text.strip(), audio[first:last + 1]))
    return questions


def ask(server: ServerProcess, host: str, ports: tuple[int, int], question: str, speech: np.ndarray, run: int) -> TurnResult:
    from listen_and_play import talk_with_file

    audio = np.concatenate([np.zeros(int(LEAD_SILENCE_S * RATE), "<i2"), speech])
    heard_before = len(server.user_lines())
    reply, question_end = talk_with_file(host, *ports, audio, reply_idle_s=REPLY_IDLE_S,
                                         timeout_s=len(audio) / RATE + REPLY_WAIT_S)
    pcm = bytes(reply.audio)
    span = voiced_span(np.frombuffer(pcm[:len(pcm) - len(pcm) % 2], dtype="<i2"))
    times = sample_times(reply.arrivals, span[0]) if span else None
    return TurnResult(
        question, run,
        heard_s=times[1] - question_end if times else None,
        first_byte_s=reply.first_at - question_end if reply.first_at else None,
        heard=" ".join(server.user_lines()[heard_before:]),
        question_end_clock=question_end,
    )


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


def run_server(flags: list[str], config, questions, runs: int) -> tuple[list[TurnResult], dict]:
    host = config.receiver.recv_host if config.receiver.recv_host not in ("0.0.0.0", "", "::") else "localhost"
    ports = (config.receiver.recv_port, config.sender.send_port)
    logger.info("starting the server: s2s_pipeline.py %s", " ".join(flags))
    server = ServerProcess(flags)
    logger.info("server ready in %.1f s", server.startup_s)
    turns = []
    try:
        for run in range(runs):
            for text, speech in questions:
                turn = ask(server, host, ports, text, speech, run)
                logger.info("run %d, %r: heard '%s', voice %s ms after the question", run + 1, text, turn.heard,
                            "never" if turn.heard_s is None else f"{turn.heard_s * 1000:.0f}")
                turns.append(turn)
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


def main(argv: list[str] | None = None) -> int:
    args, server_flags = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per transcription otherwise
    from arguments_classes.parsing import parse_arguments
    from listen_and_play import ClientError
    from utils.errors import ConfigError

    started_on = machine()
    with tempfile.TemporaryDirectory() as tmp:
        flags = with_bench_flags(server_flags, os.path.join(tmp, "metrics.jsonl"))
        try:
            config = parse_arguments(flags)
            questions = spoken_questions(args.questions)
            metrics_offset = os.path.getsize(config.module.metrics_file) if config.module.metrics_file and \
                os.path.exists(config.module.metrics_file) else 0
            turns, server = run_server(flags, config, questions, args.runs)
            server_marks = read_metrics(config.module.metrics_file, metrics_offset)
            floors = run_floors(config, questions, args.floor_repeats)
        except (ConfigError, ServerError, ClientError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    wait_s, start_s = vad_wait_s(config.vad), start_wait_s(config.vad)
    summary = {**summarize(turns, floors, wait_s, server_marks, start_s), **server,
               "machine": f"{started_on}, {os.getloadavg()[0]:.2f} at end"}
    print(format_table(summary))
    print()
    print(format_questions(turns, floors, wait_s, start_s))
    if args.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "server_flags": server_flags, "summary": summary,
                  "turns": [asdict(t) for t in turns], "floors": [asdict(f) for f in floors],
                  "server_marks": server_marks}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        logger.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
