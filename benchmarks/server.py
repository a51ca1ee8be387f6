"""`python s2s_pipeline.py` as a child process: start-up time, its output, peak memory, a clean stop."""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "ready: talk to me"
STOP_TIMEOUT_S = 20.0


class ServerError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def http_service(command: list[str], health_url: str, log_path: str | Path, start_timeout_s: float = 120.0,
                 poll_s: float = 0.5) -> Iterator[subprocess.Popen]:
    """Another program's HTTP server (llama.cpp's, faster-whisper-server...) as a child process, its output in
    `log_path` (a file: nobody reads a pipe while it serves, and a full one would block it). Yields once
    `health_url` answers; terminated on leaving. ServerError with the log's end if it does not start in time."""
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + start_timeout_s
            while True:
                try:
                    urllib.request.urlopen(health_url, timeout=2).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        tail = Path(log_path).read_text(encoding="utf-8", errors="replace")[-2000:]
                        raise ServerError(f"{' '.join(command[:3])} did not start: {tail}") from None
                    time.sleep(poll_s)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class ServerProcess:
    def __init__(self, flags: list[str], ready_timeout_s: float = 300.0) -> None:
        self.stdout: list[str] = []
        self.stdout_at: list[float] = []  # time.monotonic() when each stdout line arrived
        self.stderr: list[str] = []
        started = time.monotonic()
        # -u and COLUMNS: USER lines arrive as they are printed, each on one line.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "500"}
        self.proc = subprocess.Popen([sys.executable, "-u", str(ROOT / "s2s_pipeline.py"), *flags], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self._ready = threading.Event()
        self._readers = [threading.Thread(target=self._collect, args=(stream, sink, times), daemon=True)
                         for stream, sink, times in ((self.proc.stdout, self.stdout, self.stdout_at),
                                                     (self.proc.stderr, self.stderr, None))]
        for reader in self._readers:
            reader.start()
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() - started > ready_timeout_s:
                self.stop()
                raise ServerError("the server did not start; its last lines:\n" + "\n".join(self.stderr[-20:]))
        self.startup_s = time.monotonic() - started

    def _collect(self, stream, sink: list[str], times: list[float] | None) -> None:
        for line in stream:
            if times is not None:
                times.append(time.monotonic())  # before the line: a reader pairing the two never sees a line without its time
            sink.append(line.rstrip("\n"))
            if READY_LINE in line:
                self._ready.set()

    def user_lines(self) -> list[str]:
        """What the server heard, one line per transcript."""
        return [line.split("USER:", 1)[1].strip() for line in list(self.stdout) if line.startswith("USER:")]

    def user_lines_between(self, start: float, end: float) -> list[str]:
        """What the server heard from `start` to `end` (time.monotonic()), one line per transcript."""
        lines = zip(list(self.stdout_at), list(self.stdout))
        return [line.split("USER:", 1)[1].strip() for at, line in lines if start <= at < end and line.startswith("USER:")]

    def peak_memory_mb(self) -> float | None:
        """VmHWM (peak resident set) of the server process; None where /proc is absent."""
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return None

    def stop(self) -> int:
        """SIGINT, as Ctrl-C would, then wait; kill only if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                logger.warning("the server did not stop within %.0f s of SIGINT; killing it", STOP_TIMEOUT_S)
                self.proc.kill()
                self.proc.wait()
        for reader in self._readers:
            reader.join(2.0)
        return self.proc.returncode
