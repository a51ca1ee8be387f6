#!/usr/bin/env python
"""What a stage costs when it runs on an OpenAI-compatible server on loopback instead of in-process, same model.

    python benchmarks/remote.py [--rounds 3] [--no-llm]

Each stage's handler is timed in both forms on the same inputs, alternately, after a warm-up:
  STT  the bundled tiny.en in-process (--stt faster-whisper), and the same handler's transcription behind the
       loopback server of tests/openai_fake.py (--stt open_api): from the utterance to its transcript.
       Inputs: the questions of benchmarks/questions.txt spoken by espeak-ng.
  LLM  the bundled SmolLM2 in-process (--llm llama-cpp), and behind llama.cpp's own server (python -m
       llama_cpp.server, same GGUF, same threads; --llm open_api): from the messages to the first token.
  TTS  hibari in-process (--tts hibari), and the same hibari voice behind the loopback server, streamed as 24 kHz
       PCM (--tts open_api): from the sentence to its first 16 kHz block.
The difference is what the remote form adds: WAV or JSON encoding, HTTP on loopback, the server's parsing and
the SDK's, threads handing over. A real server adds its own queueing and the network's round trips on top.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arguments_classes.parsing import parse_arguments  # noqa: E402
from benchmarks.measures import median, percentile  # noqa: E402
from benchmarks.questions import load_questions  # noqa: E402
from benchmarks.server import ServerError, http_service  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.openai_fake import RecordingServer, wav_samples  # noqa: E402
from utils.pipeline.messages import Conversation, Sentence, Turn  # noqa: E402

SENTENCES = ["The capital of Germany is Berlin.", "A spider has eight legs.", "Sure, here is a short joke for you.",
             "Water boils at one hundred degrees Celsius.", "I am doing well, thank you for asking."]


def handler(stage: str, *flags: str):
    backend, config = getattr(parse_arguments(list(flags)), stage)
    return backend.load_handler()(threading.Event(), None, None, setup_kwargs={"config": config})


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def compare(name: str, inputs: list, local, remote, rounds: int) -> dict:
    """Both forms on every input, alternately (the machine's state is shared fairly), `rounds` times."""
    times = {"in-process": [], "remote": []}
    for _ in range(rounds):
        for item in inputs:
            times["in-process"].append(timed(lambda: local(item)))
            times["remote"].append(timed(lambda: remote(item)))
    added = [r - a for a, r in zip(times["in-process"], times["remote"])]
    return {"stage": name, "n": len(added), **{k: (median(v), percentile(v, 90)) for k, v in times.items()},
            "added": (median(added), percentile(added, 90))}


def stt(rounds: int) -> dict:
    from tests.speech import espeak

    local = handler("stt", "--stt", "faster-whisper")
    audio = [espeak(q.text).astype(np.float32) / 32768 for q in load_questions()[:10]]

    def server_transcribe(wav, fields):  # the server runs the very same transcription
        pcm, _ = wav_samples(wav)
        return local.recognize(pcm.astype(np.float32) / 32768)

    with RecordingServer(transcribe=server_transcribe) as server:
        remote = handler("stt", "--stt", "open_api", "--stt_base_url", server.base_url)
        return compare("STT (transcript)", audio, local.recognize, remote.recognize, rounds)


def tts(rounds: int) -> dict:
    local = handler("tts", "--tts", "hibari")

    def server_speak(text, fields):  # the same voice, untrimmed, at its own 24 kHz
        audio = local.model(text, speed=float(fields.get("speed", 1.0)))
        return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()

    def first_block(tts_handler):
        def run(text):
            turn = Turn(Conversation(), time.monotonic())
            outs = tts_handler.process(Sentence(text, "en", turn, last=False))
            next(outs)
            outs.close()
        return run

    with RecordingServer(speak=server_speak) as server:
        remote = handler("tts", "--tts", "open_api", "--tts_base_url", server.base_url)
        return compare("TTS (first block)", SENTENCES, first_block(local), first_block(remote), rounds)


def llm(rounds: int) -> dict:
    from LLM.bundled_model import bundled_model_path

    local = handler("llm", "--llm", "llama-cpp")
    threads = str(local.config.n_threads)
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", bundled_model_path(), "--host", "127.0.0.1",
               "--port", str(port), "--n_threads", threads, "--n_ctx", "2048", "--verbose", "False"]
    base_url = f"http://127.0.0.1:{port}/v1"
    questions = [q.text for q in load_questions()[:10]]

    def first_token(llm_handler):
        def run(question):
            stream = llm_handler.stream(llm_handler.chat_of(Conversation()).messages(question), max_tokens=1)
            next(iter(stream))
            getattr(stream, "close", lambda: None)()
        return run

    try:
        with http_service(command, f"{base_url}/models", Path(tempfile.mkdtemp()) / "llama_cpp_server.log"):
            remote = handler("llm", "--llm", "open_api", "--open_api_base_url", base_url)
            remote.warmup()
            return compare("LLM (first token)", questions, first_token(local), first_token(remote), rounds)
    except ServerError as e:
        raise SystemExit(f"{e}\n(it needs: pip install fastapi uvicorn sse-starlette starlette-context "
                         "pydantic-settings)") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM (it starts llama.cpp's server)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    results = [stt(args.rounds)] + ([] if args.no_llm else [llm(args.rounds)]) + [tts(args.rounds)]
    print("| stage (time to) | n | in-process median / p90 | remote on loopback median / p90 | added median / p90 |")
    print("|---|---|---|---|---|")
    for r in results:
        cells = [f"{r[k][0] * 1000:.1f} / {r[k][1] * 1000:.1f} ms" for k in ("in-process", "remote", "added")]
        print(f"| {r['stage']} | {r['n']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
