#!/usr/bin/env python
"""llama.cpp's speed when the model is warmed up on one thread and answers on another, as the server does it.

    python benchmarks/llama_threads.py               # the bundled model, 1 and 2 threads
    python benchmarks/llama_threads.py --model x.gguf

llama.cpp computes with OpenMP, which keeps a pool of worker threads for every thread that has computed, as long as
that thread lives. The server builds its handlers on the main thread and answers on the handler's thread: a warmup
on the main thread leaves a second pool behind, and with more OpenMP threads than cores OpenMP stops spinning at its
barriers and sleeps at each one (LLM/llama_cpp_handler.py warms up on a thread that ends). Each case runs in a fresh
process: a prompt of the question's tokens read after a cached system prompt, then single-token decodes.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WARMUPS = ("none", "calling thread", "passing thread")
PROMPT = b"You are a helpful voice assistant. Answer briefly. What is the capital of France?"
SHARED = 4  # tokens kept from the context before each read: the rest is the question
ROUNDS = 10


def one_case(model_path: str, threads: int, warmup: str) -> dict:
    """In this process: warm up as told, then read and decode on a worker thread; medians in ms."""
    import threading
    import time

    from llama_cpp import Llama

    model = Llama(model_path=model_path, n_threads=threads, n_ctx=2048, verbose=False)
    tokens = model.tokenize(PROMPT)

    def warm() -> None:
        model.reset()
        model.eval(tokens)

    if warmup == "calling thread":
        warm()
    elif warmup == "passing thread":
        thread = threading.Thread(target=warm)
        thread.start()
        thread.join()
    result: dict = {}

    def work() -> None:
        reads, decodes = [], []
        for _ in range(ROUNDS):
            model.reset()
            model.eval(tokens[:SHARED])
            started = time.perf_counter()
            model.eval(tokens[SHARED:])
            reads.append(1000 * (time.perf_counter() - started))
            for token in tokens[:10]:
                started = time.perf_counter()
                model.eval([token])
                decodes.append(1000 * (time.perf_counter() - started))
        result.update(prompt_ms=statistics.median(reads), token_ms=statistics.median(decodes),
                      prompt_tokens=len(tokens) - SHARED)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a GGUF file (default: the bundled model, as the server loads it)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case, in a child process
    args = parser.parse_args()
    if args.case:
        threads, warmup = args.case.split(":", 1)
        print(json.dumps(one_case(args.model, int(threads), warmup)))
        return 0
    if args.model is None:
        from LLM.bundled_model import bundled_model_path
        from LLM.gguf_requantize import requantized

        args.model = requantized(bundled_model_path())
    print(f"model: {args.model}\n")
    print("| llama.cpp threads | warmed up on | prompt read | decode, per token |")
    print("|---|---|---|---|")
    for threads in args.threads:
        for warmup in WARMUPS:
            out = subprocess.run([sys.executable, __file__, "--model", args.model, "--case", f"{threads}:{warmup}"],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {threads} | {warmup} | {r['prompt_ms']:.0f} ms ({r['prompt_tokens']} tokens) | "
                  f"{r['token_ms']:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
