#!/usr/bin/env python
"""Voice-to-voice latency when several clients talk to one server at once.

    python benchmarks/concurrency.py                                  # 1, 2 and 4 clients, a 10-turn conversation each
    python benchmarks/concurrency.py --clients 1 4 --per_client 12 --json out.json -- --lm_gen_max_tokens 48
    python benchmarks/concurrency.py --mode fresh --per_client 4 --align end   # each question on a new connection

The server starts once (flags after -- go to it, as in latency.py). For each N of --clients, a round: N client
threads, each its own conversation on the server, ask --per_client questions of questions.txt. Client i starts
at question i * len(questions) // N, so simultaneous clients ask different questions.

--mode conversation (the default): each client holds one conversation on one connection, as a person would:
every question after the whole previous reply has played, so its history grows turn by turn. The clients
start together and then go at their own pace (replies differ in length).
--mode fresh: each question is a new connection, so a new conversation without history, and the clients move
in lockstep: every client starts its k-th question at the same moment (a barrier), so each step has N
questions in flight together; the next step starts once every client has heard its reply (or given up on it).
The questions differ in length (1.2-2.0 s here), so started together they end up to ~0.8 s apart, and the
server sees their ends one after another. `--align end` delays the shorter questions of a step so that all
end together: N ends of speech at once, the worst case for the shared stages.

Voice-to-voice is measured as in latency.py: when the reply's first voiced sample plays at the client minus
when the question's last voiced sample was sent. A turn is answered if a voiced reply came within
--reply_wait_s of the question's end (fresh), or began playing after the question's end (conversation).
The server's memory is read from /proc: VmRSS before the first round and after the last, VmHWM (peak so far)
after each round.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.latency import (  # noqa: E402
    CONVERSATION_REPLY_IDLE_S,
    CONVERSATION_REPLY_WAIT_S,
    LEAD_SILENCE_S,
    PAUSE_S,
    QUESTIONS_FILE,
    REPLY_IDLE_S,
    machine,
    read_metrics,
    spoken_questions,
    with_bench_flags,
    with_lead,
)
from benchmarks.measures import RATE, first_voice_s, median, percentile  # noqa: E402
from benchmarks.server import ServerError, ServerProcess  # noqa: E402

logger = logging.getLogger("benchmarks.concurrency")

REPLY_WAIT_S = 12.0  # latency.py waits 8 s; with several clients queued on the same stages the first words come later
BARRIER_SLACK_S = 30.0  # beyond the longest a turn can take: a client stuck this long breaks the lockstep, not the run


@dataclass
class ConcurrentTurn:
    """One question asked by one client during a round; seconds after the question's last voiced sample."""

    clients: int  # clients talking at once in this round
    client: int
    step: int
    question: str
    heard_s: float | None  # the reply's first voiced sample played (None: no voiced reply)
    first_byte_s: float | None  # the reply's first byte arrived, silence or not
    error: str = ""


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ours, server_flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                usage="%(prog)s [--clients N...] [--per_client K] [--json out.json] [-- <server flags>...]")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4], help="clients talking at once, one round each")
    p.add_argument("--mode", choices=("conversation", "fresh"), default="conversation",
                   help="each client's questions on one connection, or each on a new one")
    p.add_argument("--per_client", type=int, default=10, help="questions each client asks per round")
    p.add_argument("--reply_wait_s", type=float, default=REPLY_WAIT_S,
                   help="fresh: after the question's end, a reply with no voice by then is not answered, and is cut there")
    p.add_argument("--align", choices=("start", "end"), default="start",
                   help="fresh: the questions of a step start together, or are delayed so they end together")
    p.add_argument("--voice", choices=("espeak", "hibari"), default="espeak",
                   help="who asks (as in latency.py: the end-of-turn model mostly waits --max_turn_silence_ms for "
                        "espeak-ng's voice)")
    p.add_argument("--json", help="also write the table's numbers and every turn here")
    p.add_argument("--questions", default=str(QUESTIONS_FILE), help="one question a line")
    args = p.parse_args(ours)
    if min(args.clients) < 1 or args.per_client < 1:
        p.error("--clients and --per_client must be at least 1")
    return args, server_flags


def client_questions(count: int, clients: int, client: int, per_client: int) -> list[int]:
    """Indices (into `count` questions) that `client` of `clients` asks, in order: the clients start spread
    evenly over the list, so at every step they ask different questions (while clients <= count)."""
    start = client * count // clients
    return [(start + k) % count for k in range(per_client)]


def start_delays(lengths_s: Sequence[float], align: str) -> list[float]:
    """Seconds each client waits before its question of a step, given the questions' lengths: none when
    they start together, and for `end`, what makes every question end when the longest does."""
    if align == "start":
        return [0.0] * len(lengths_s)
    longest = max(lengths_s)
    return [longest - length for length in lengths_s]


def proc_status_mb(status: str, field: str) -> float | None:
    """A memory line of /proc/<pid>/status ('VmRSS:   123456 kB') in MB; None if absent."""
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def server_memory_mb(server: ServerProcess, field: str) -> float | None:
    try:
        with open(f"/proc/{server.proc.pid}/status", encoding="ascii") as f:
            value = proc_status_mb(f.read(), field)
    except OSError:
        return None
    return None if value is None else round(value, 1)


def summarize_round(clients: int, turns: Sequence[ConcurrentTurn], peak_mb: float | None = None) -> dict:
    """One row of the table: voice-to-voice over every answered turn of the round, in ms."""
    heard = [t.heard_s for t in turns if t.heard_s is not None]
    stats = {"median_ms": median, "p90_ms": lambda v: percentile(v, 90), "max_ms": max}
    return {
        "clients": clients, "answered": len(heard), "asked": len(turns),
        **{name: round(stat(heard) * 1000) if heard else None for name, stat in stats.items()},
        "peak_memory_mb": None if peak_mb is None else round(peak_mb),
    }


def _cell(value, unit: str = "") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def format_table(rows: Sequence[dict], rss_before_mb: float | None, rss_after_mb: float | None) -> str:
    lines = ["| clients | turns answered / asked | median | p90 | max | server peak memory (VmHWM) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['clients']} | {r['answered']} / {r['asked']} | {_cell(r['median_ms'], ' ms')} | "
                     f"{_cell(r['p90_ms'], ' ms')} | {_cell(r['max_ms'], ' ms')} | {_cell(r['peak_memory_mb'], ' MB')} |")
    before = _cell(rss_before_mb and round(rss_before_mb), " MB")
    after = _cell(rss_after_mb and round(rss_after_mb), " MB")
    lines += ["", f"server RSS (VmRSS): {before} before the first round, {after} after the last"]
    return "\n".join(lines)


def ask(host: str, ports: tuple[int, int], speech: np.ndarray, reply_wait_s: float) -> tuple[float | None, float | None]:
    """One question on a new connection: (voice-to-voice, first reply byte), seconds after the question's end."""
    from listen_and_play import talk_with_file

    audio = with_lead(speech)
    reply, question_end = talk_with_file(host, *ports, audio, reply_idle_s=REPLY_IDLE_S,
                                         timeout_s=len(audio) / RATE + reply_wait_s)
    heard = first_voice_s(bytes(reply.audio), reply.arrivals, question_end)
    return heard, (reply.first_at - question_end if reply.first_at else None)


def converse_turns(host: str, ports: tuple[int, int], texts_and_speech, clients: int, client: int) -> list[ConcurrentTurn]:
    """One client's questions in one conversation. A reply whose voice played before its question ended is
    not timed: it is the previous reply's tail, or an answer to half the question."""
    from listen_and_play import converse

    audios = [with_lead(speech) for _, speech in texts_and_speech]
    wait_s = max(len(a) for a in audios) / RATE + CONVERSATION_REPLY_WAIT_S
    results = converse(host, *ports, audios, silence_s=wait_s, reply_idle_s=CONVERSATION_REPLY_IDLE_S, timeout_s=wait_s)
    turns = []
    for step, (text, _) in enumerate(texts_and_speech):
        if step >= len(results):
            turns.append(ConcurrentTurn(clients, client, step, text, None, None, "the conversation had ended"))
            continue
        reply, end = results[step]
        heard = first_voice_s(bytes(reply.audio), reply.arrivals, end)
        early = heard is not None and heard < 0
        turns.append(ConcurrentTurn(clients, client, step, text, None if early else heard,
                                    reply.first_at - end if reply.first_at else None,
                                    "the reply's voice began before the question ended" if early else ""))
    return turns


def in_threads(clients: int, client) -> list[ConcurrentTurn]:
    """`client(index, turns)` in one thread per client, each filling its own list; every turn, by step then client."""
    results: list[list[ConcurrentTurn]] = [[] for _ in range(clients)]
    threads = [threading.Thread(target=client, args=(i, results[i]), name=f"bench-client-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted((t for turns in results for t in turns), key=lambda t: (t.step, t.client))


def log_turn(turn: ConcurrentTurn) -> None:
    logger.info("%d clients, client %d, turn %d, %r: voice %s ms after the question", turn.clients, turn.client,
                turn.step + 1, turn.question, "never" if turn.heard_s is None else f"{turn.heard_s * 1000:.0f}")


def run_conversations(clients: int, host: str, ports: tuple[int, int], questions, per_client: int) -> list[ConcurrentTurn]:
    """Each client holds one conversation of `per_client` turns; all start together, then each at its own pace."""
    from listen_and_play import ClientError

    barrier = threading.Barrier(clients)

    def client(index: int, turns: list[ConcurrentTurn]) -> None:
        mine = [questions[q] for q in client_questions(len(questions), clients, index, per_client)]
        try:
            barrier.wait(BARRIER_SLACK_S)
        except threading.BrokenBarrierError:
            pass  # another client is gone: go on rather than hang
        try:
            turns += converse_turns(host, ports, mine, clients, index)
        except (ClientError, OSError) as e:
            logger.warning("client %d: %s", index, e)
            turns += [ConcurrentTurn(clients, index, step, text, None, None, str(e)) for step, (text, _) in enumerate(mine)]
        for turn in turns:
            log_turn(turn)

    return in_threads(clients, client)


def run_round(clients: int, host: str, ports: tuple[int, int], questions, per_client: int,
              reply_wait_s: float, align: str = "start") -> list[ConcurrentTurn]:
    """Each question on a new connection, the clients in lockstep: step k starts for all at once."""
    from listen_and_play import ClientError

    schedules = [client_questions(len(questions), clients, c, per_client) for c in range(clients)]
    delays = [start_delays([len(questions[s[step]][1]) / RATE for s in schedules], align) for step in range(per_client)]
    longest_s = 2 * max(len(speech) for _, speech in questions) / RATE + LEAD_SILENCE_S + reply_wait_s
    barrier = threading.Barrier(clients)

    def client(index: int, turns: list[ConcurrentTurn]) -> None:
        for step, q in enumerate(schedules[index]):
            text, speech = questions[q]
            try:
                barrier.wait(longest_s + BARRIER_SLACK_S)
            except threading.BrokenBarrierError:
                pass  # another client is stuck or gone: go on unsynchronised rather than hang
            time.sleep(delays[step][index])
            turn = ConcurrentTurn(clients, index, step, text, None, None)
            try:
                turn.heard_s, turn.first_byte_s = ask(host, ports, speech, reply_wait_s)
            except (ClientError, OSError) as e:
                turn.error = str(e)
                logger.warning("client %d: %s", index, e)
            log_turn(turn)
            turns.append(turn)
            time.sleep(PAUSE_S)  # the server closes the old session before this client connects again

    return in_threads(clients, client)


def run(flags: list[str], config, questions, args) -> dict:
    host = config.receiver.recv_host if config.receiver.recv_host not in ("0.0.0.0", "", "::") else "localhost"
    ports = (config.receiver.recv_port, config.sender.send_port)
    metrics_file = config.module.metrics_file
    logger.info("starting the server: s2s_pipeline.py %s", " ".join(flags))
    server = ServerProcess(flags)
    logger.info("server ready in %.1f s", server.startup_s)
    result = {"startup_s": round(server.startup_s, 2), "rss_before_mb": server_memory_mb(server, "VmRSS"),
              "rounds": [], "turns": []}
    try:
        for clients in args.clients:
            metrics_offset = os.path.getsize(metrics_file) if metrics_file and os.path.exists(metrics_file) else 0
            heard_before = len(server.user_lines())
            if args.mode == "conversation":
                turns = run_conversations(clients, host, ports, questions, args.per_client)
            else:
                turns = run_round(clients, host, ports, questions, args.per_client, args.reply_wait_s, args.align)
            time.sleep(PAUSE_S)  # the last replies' metrics lines are written as their turns end
            row = summarize_round(clients, turns, server_memory_mb(server, "VmHWM"))
            marks = [m.get("first_audio_sent_ms") for m in read_metrics(metrics_file, metrics_offset)]
            marks = [m for m in marks if m is not None]
            row["server_first_audio_sent_median_ms"] = round(median(marks)) if marks else None
            row["server_transcripts"] = len(server.user_lines()) - heard_before
            result["rounds"].append(row)
            result["turns"] += [asdict(t) for t in turns]
        result["rss_after_mb"] = server_memory_mb(server, "VmRSS")
    finally:
        code = server.stop()
    if code != 0:
        logger.warning("the server exited with code %s", code)
    return result


def main(argv: list[str] | None = None) -> int:
    args, server_flags = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from arguments_classes.parsing import parse_arguments
    from listen_and_play import ClientError
    from utils.errors import ConfigError

    started_on = machine()
    with tempfile.TemporaryDirectory() as tmp:
        flags = with_bench_flags(server_flags, os.path.join(tmp, "metrics.jsonl"))
        try:
            config = parse_arguments(flags)
            if max(args.clients) > config.receiver.max_sessions:
                raise ConfigError(f"--clients {max(args.clients)} needs a server that takes that many: "
                                  f"add -- --max_sessions {max(args.clients)}")
            questions = spoken_questions(args.questions, args.voice)
            result = run(flags, config, questions, args)
        except (ConfigError, ServerError, ClientError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    print(format_table(result["rounds"], result["rss_before_mb"], result.get("rss_after_mb")))
    how = ("each client one conversation on one connection, the clients started together" if args.mode == "conversation"
           else f"each question on a new connection, each step's questions {'started' if args.align == 'start' else 'ended'} together")
    print(f"\n{args.per_client} questions per client per round, {how}; machine: {started_on}, {os.getloadavg()[0]:.2f} at end")
    if args.json:
        record = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "server_flags": server_flags, "mode": args.mode,
                  "per_client": args.per_client,
                  "align": args.align, "reply_wait_s": args.reply_wait_s, "machine": started_on, **result}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        logger.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
