"""A PulseAudio server the test owns, with one room: a null sink `room` whose monitor is the default source.

Whatever is played into the room (paplay, or PortAudio's default output) is what every microphone hears
(the monitor), so speaker and microphone share the air. PortAudio reaches it through ALSA's pulse plugin
(Debian: pulseaudio, pulseaudio-utils, libportaudio2, libasound2-plugins).

The server runs in the foreground as our child, with its runtime, state and cookie under a temporary
directory, so it never meets another user's server. As root it runs in per-user mode with a warning; that
works, `--system` is not needed. Clients find it through PULSE_SERVER (see `client_env`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from utils.audio import SAMPLE_RATE

ROOM_SCRIPT = f"""\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name=room rate={SAMPLE_RATE} channels=1
set-default-sink room
set-default-source room.monitor
"""
# The same room with the assistant's speaker on a sink of its own, looped into the room: the microphone still hears
# it (with the loopback's delay, an echo path), and `speaker.monitor` records the assistant alone, so a test can
# tell exactly when its voice stops while the user talks over it.
SPLIT_ROOM_SCRIPT = f"""\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name=room rate={SAMPLE_RATE} channels=1
load-module module-null-sink sink_name=speaker rate={SAMPLE_RATE} channels=1
load-module module-loopback source=speaker.monitor sink=room latency_msec=20
set-default-sink speaker
set-default-source room.monitor
"""
TOOLS = ("pulseaudio", "pactl", "paplay", "parec")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


class PulseRoom:
    def __init__(self, directory: Path, split: bool = False) -> None:
        self.dir = Path(directory)
        self.split = split
        self.runtime = self.dir / "runtime"
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "pulseaudio.log"

    def client_env(self) -> dict[str, str]:
        """Variables that send a PulseAudio client (and PortAudio through ALSA) to this server only."""
        return {
            "PULSE_SERVER": f"unix:{self.runtime / 'native'}",
            "PULSE_COOKIE": str(self.dir / ".config" / "pulse" / "cookie"),
            "PULSE_CLIENTCONFIG": str(self.dir / "client.conf"),  # autospawn = no: never start another server
        }

    def start(self, timeout: float = 15.0) -> "PulseRoom":
        self.runtime.mkdir(parents=True, exist_ok=True)
        (self.dir / "state").mkdir(exist_ok=True)
        (self.dir / "room.pa").write_text(SPLIT_ROOM_SCRIPT if self.split else ROOM_SCRIPT)
        (self.dir / "client.conf").write_text("autospawn = no\n")
        env = {**os.environ, "HOME": str(self.dir), "XDG_RUNTIME_DIR": str(self.dir),
               "PULSE_RUNTIME_PATH": str(self.runtime), "PULSE_STATE_PATH": str(self.dir / "state")}
        cmd = ["pulseaudio", "-n", "-F", str(self.dir / "room.pa"), "--daemonize=no", "--exit-idle-time=-1",
               "--use-pid-file=no", "--log-target=stderr"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pulseaudio did not answer within {timeout} s: {self.log.read_text()[-2000:]}")

    def _answers(self) -> bool:
        result = subprocess.run(["pactl", "info"], env={**os.environ, **self.client_env()},
                                capture_output=True, text=True, timeout=5)
        return result.returncode == 0 and "Default Source: room.monitor" in result.stdout

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def play(self, wav_path: Path) -> None:
        """Say a WAV file into the room; returns once it has been played."""
        subprocess.run(["paplay", "-d", "room", str(wav_path)], env={**os.environ, **self.client_env()},
                       check=True, timeout=60)

    def start_playing(self, wav_path: Path) -> subprocess.Popen:
        """Say a WAV file into the room without waiting for it to end."""
        return subprocess.Popen(["paplay", "-d", "room", str(wav_path)], env={**os.environ, **self.client_env()})

    def record(self, raw_path: Path, source: str = "room.monitor") -> subprocess.Popen:
        """Start recording the room (or, in a split room, `speaker.monitor`: the assistant alone) to `raw_path`
        (16 kHz mono s16le); terminate() the process to stop."""
        out = open(raw_path, "wb")
        try:
            return subprocess.Popen(["parec", "-d", source, f"--rate={SAMPLE_RATE}", "--channels=1",
                                     "--format=s16le", "--raw", "--latency-msec=20"],
                                    env={**os.environ, **self.client_env()}, stdout=out)
        finally:
            out.close()  # the child holds its own descriptor
