#!/usr/bin/env python
"""Connect/disconnect cycles against the real server: threads and memory before and after.

    python benchmarks/cycles.py [--cycles 100] [-- <server flags>]

Each cycle connects both sockets and leaves: with nothing said, mid-question, with a reply on its way
(a whole spoken question, gone before the reply ends) or after random bytes. A full conversation
before and after shows the server still answers. Prints the server's VmRSS and thread count.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.server import ServerProcess, free_port  # noqa: E402


def status(pid: int) -> dict[str, float]:
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                values[key] = int(rest.split()[0]) / (1024 if key.startswith("Vm") else 1)
    return values


def main() -> int:
    argv = sys.argv[1:]
    ours, flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=100)
    args = parser.parse_args(ours)
    from listen_and_play import connect_pair, talk_with_file
    from tests.speech import espeak

    ports = (free_port(), free_port())
    server = ServerProcess(["--recv_port", str(ports[0]), "--send_port", str(ports[1]), *flags])
    question = espeak("What is the capital of Germany?")
    rng = np.random.default_rng(0)
    try:
        first, _ = talk_with_file("127.0.0.1", *ports, question, silence_s=10, reply_idle_s=1.0, timeout_s=30)
        time.sleep(1.0)
        before = status(server.proc.pid)
        started = time.monotonic()
        for cycle in range(args.cycles):
            send, recv = connect_pair("127.0.0.1", *ports)
            kind = cycle % 4
            if kind == 1:  # gone mid-question
                send.sendall(question[: len(question) // 2].tobytes())
            elif kind == 2:  # gone with a reply on its way
                send.sendall(question.tobytes() + bytes(16000))
                time.sleep(0.6)
            elif kind == 3:
                send.sendall(rng.integers(0, 256, int(rng.integers(1, 20000)), dtype=np.uint8).tobytes())
            send.close(), recv.close()
        took = time.monotonic() - started
        time.sleep(3.0)  # sessions close, threads end
        after = status(server.proc.pid)
        last, _ = talk_with_file("127.0.0.1", *ports, question, silence_s=10, reply_idle_s=1.0, timeout_s=30)
    finally:
        code = server.stop()
    print(f"{args.cycles} cycles in {took:.1f} s; server exit code {code}")
    print("| | before | after |\n|---|---|---|")
    print(f"| VmRSS | {before['VmRSS']:.0f} MB | {after['VmRSS']:.0f} MB |")
    print(f"| threads | {before['Threads']:.0f} | {after['Threads']:.0f} |")
    print(f"| answered a question | {first.first_at is not None} | {last.first_at is not None} |")
    return 0 if first.first_at and last.first_at and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
