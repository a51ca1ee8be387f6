#!/usr/bin/env python
"""Time to first audio over the Realtime WebSocket, in whole conversations, with one and with several sessions.

    python benchmarks/realtime.py                                # 1 then 4 sessions, 12 spoken questions each
    python benchmarks/realtime.py --sessions 4 --questions 10 --voice espeak -- --end_of_turn silence

It starts `s2s_pipeline.py` (flags after -- go to it) and talks to its Realtime endpoint with the official
`openai` SDK's Realtime client (benchmarks/realtime_client.py): each session asks its questions one after
another on one connection, streamed at the pace they are spoken (24 kHz PCM16), and waits for the reply to
play out before the next. The questions are benchmarks/turn_questions.txt said whole (held out: the thresholds
were chosen on questions.txt); each session starts at a different one.

Latency: from the question's last voiced sample (sent at the pace of speech) to the reply's first voiced
sample as the client would play it (its first audio delta's arrival, plus where the voice starts in the audio).
A cut-in is a reply whose first audio came before the question was over; "early, cut" counts replies started
before the question was over and cut by it (barge-in): the reply that counts is the one that completes.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.measures import SILENCE_THRESHOLD, percentile  # noqa: E402
from benchmarks.realtime_client import RATE, RealtimeTalker  # noqa: E402
from benchmarks.server import ServerProcess, free_port  # noqa: E402

logger = logging.getLogger("benchmarks.realtime")

QUESTIONS_FILE = ROOT / "benchmarks" / "turn_questions.txt"
REPLY_WAIT_S = 90.0
AFTER_REPLY_S = 0.5  # the listener's pause between the reply's end and the next question


def questions(n: int) -> list[str]:
    lines = [line.split("#")[0].replace("|", " ").strip() for line in QUESTIONS_FILE.read_text().splitlines()]
    return [" ".join(line.split()) for line in lines if line][:n]


def synthesize(texts: list[str], voice: str) -> list[np.ndarray]:
    from tests.speech import espeak, hibari

    speak = hibari if voice == "hibari" else espeak
    return [speak(text) for text in texts]


def first_voice_offset_s(audio: bytes) -> float:
    samples = np.frombuffer(audio, "<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_THRESHOLD)
    return loud[0] / RATE if len(loud) else 0.0


async def conversation(port: int, spoken: list[np.ndarray], start: int, results: list[dict], session: int) -> None:
    async with RealtimeTalker(port) as talk:
        await talk.wait_for("session.created", 30)
        for k in range(len(spoken)):
            index = (start + k) % len(spoken)
            said_from = time.monotonic()
            voiced_end = await talk.say(spoken[index], silence_after_s=0.2)
            record = {"session": session, "turn": k + 1, "question": index}
            try:  # the reply that completes: a reply started while the question went on is cut by it (barge-in)
                _, done = await talk.wait_for("response.done", REPLY_WAIT_S, said_from,
                                              where=lambda e: e.response.status == "completed")
                rid = done.response.id
                first_at, _ = await talk.wait_for("response.output_audio.delta", 1, said_from,
                                                  where=lambda e, rid=rid: e.response_id == rid)
            except TimeoutError as e:
                record["error"] = str(e)
                results.append(record)
                continue
            record["cut_short"] = sum(1 for e in talk.of_type("response.done", said_from)
                                      if e.response.status == "cancelled")
            audio = b"".join(base64.b64decode(e.delta) for e in talk.of_type("response.output_audio.delta")
                             if e.response_id == rid)
            heard_at = first_at + first_voice_offset_s(audio)
            record.update(latency_ms=float(1000 * (heard_at - voiced_end)), reply_s=len(audio) / 2 / RATE,
                          cut_in=bool(first_at < voiced_end))
            transcripts = [e.transcript for e in talk.of_type("conversation.item.input_audio_transcription.completed")
                           if e.item_id]
            record["heard"] = transcripts[-1] if transcripts else ""
            results.append(record)
            # wait while the rest of the reply plays at the client
            played_until = first_at + len(audio) / 2 / RATE
            await asyncio.sleep(max(0.0, played_until - time.monotonic()) + AFTER_REPLY_S)


async def run_sessions(port: int, spoken: list[np.ndarray], sessions: int) -> list[dict]:
    results: list[dict] = []
    step = max(1, len(spoken) // sessions)
    await asyncio.gather(*(conversation(port, spoken, s * step, results, s + 1) for s in range(sessions)))
    return results


def summary(results: list[dict]) -> dict:
    latencies = [r["latency_ms"] for r in results if "latency_ms" in r]
    later = [r["latency_ms"] for r in results if "latency_ms" in r and r["turn"] > 1]
    return {
        "turns": len(results), "answered": len(latencies), "failed": sum("error" in r for r in results),
        "cut_ins": sum(r.get("cut_in", False) for r in results),
        "replies_cut_by_the_question_going_on": sum(r.get("cut_short", 0) for r in results),
        "median_ms": percentile(latencies, 50) if latencies else None,
        "p90_ms": percentile(latencies, 90) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
        "later_turns_median_ms": percentile(later, 50) if later else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="1,4", help="session counts to run, one after the other")
    parser.add_argument("--questions", type=int, default=12, help="questions per conversation")
    parser.add_argument("--voice", choices=("hibari", "espeak"), default="hibari")
    parser.add_argument("--json", help="write every turn and the summaries here")
    parser.add_argument("server_flags", nargs="*", help="after --: flags for s2s_pipeline.py")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    texts = questions(args.questions)
    logger.info("synthesising %d questions with %s", len(texts), args.voice)
    spoken = synthesize(texts, args.voice)
    port = free_port()
    flags = ["--recv_port", str(free_port()), "--send_port", str(free_port()), "--realtime_port", str(port),
             "--max_sessions", "8", "--max_sessions_per_host", "8", *args.server_flags]
    logger.info("starting the server: s2s_pipeline.py %s", " ".join(flags))
    server = ServerProcess(flags)
    report: dict = {"flags": flags, "voice": args.voice, "questions": texts, "runs": {}}
    try:
        for sessions in [int(s) for s in args.sessions.split(",")]:
            logger.info("%d session(s), %d questions each", sessions, len(texts))
            results = asyncio.run(run_sessions(port, spoken, sessions))
            report["runs"][str(sessions)] = {"summary": summary(results), "turns": results}
    finally:
        server.stop()
    print(f"\nRealtime endpoint, time to first audio ({args.voice} voice, {len(texts)} questions per conversation)")
    print(f"{'sessions':>8} {'turns':>6} {'answered':>8} {'failed':>6} {'cut-ins':>7} {'early, cut':>10} {'median':>8} "
          f"{'p90':>8} {'max':>8} {'turns 2+ median':>16}")
    for sessions, run in report["runs"].items():
        s = run["summary"]

        def ms(value):
            return "-" if value is None else f"{value:.0f}"

        print(f"{sessions:>8} {s['turns']:>6} {s['answered']:>8} {s['failed']:>6} {s['cut_ins']:>7} "
              f"{s['replies_cut_by_the_question_going_on']:>10} {ms(s['median_ms']):>8} {ms(s['p90_ms']):>8} {ms(s['max_ms']):>8} {ms(s['later_turns_median_ms']):>16}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
