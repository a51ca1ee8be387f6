import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.server import free_port  # noqa: E402


class ServerProcess:
    """`python s2s_pipeline.py` in a subprocess, its output collected line by line."""

    def __init__(self, *flags: str, ready_timeout: float = 120.0) -> None:
        self.recv_port, self.send_port = free_port(), free_port()
        # The Realtime endpoint on a free port too: the default 8765 may be taken (another test's server, a user's)
        self.realtime_port = free_port() if "--realtime_port" not in flags else int(flags[flags.index("--realtime_port") + 1])
        realtime = [] if "--realtime_port" in flags else ["--realtime_port", str(self.realtime_port)]
        cmd = [sys.executable, "-u", str(ROOT / "s2s_pipeline.py"), "--recv_port", str(self.recv_port),
               "--send_port", str(self.send_port), *realtime, *flags]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "500"}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=self._collect, args=(stream, sink), daemon=True).start()
        self.wait_for(lambda: any("ready: talk to me" in line for line in self.stderr), ready_timeout, "server ready")

    @staticmethod
    def _collect(stream, sink):
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; stderr:\n" + "\n".join(self.stderr[-40:]))

    def lines(self, prefix: str) -> list[str]:
        return [line[len(prefix):].strip() for line in self.stdout if line.startswith(prefix)]

    def stop(self, sig=None) -> int:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    """A PulseAudio server of the test's own with a null sink whose monitor is the default source: a room
    where speakers and microphones share the air, with real PortAudio devices on a headless machine."""
    from tests.pulse_room import PulseRoom, missing_tools

    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install pulseaudio pulseaudio-utils libportaudio2)")
    room = PulseRoom(tmp_path_factory.mktemp("pulse")).start()
    yield room
    room.stop()


@pytest.fixture
def in_room(room, monkeypatch):
    for name, value in room.client_env().items():
        monkeypatch.setenv(name, value)
    return room
