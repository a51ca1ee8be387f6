"""listen_and_play.py's file mode against a scripted loopback server: where the question ends, a reply the
server cut off, an --output_file that cannot be written."""
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from listen_and_play import VOICE_WINDOW, describe_latency, talk_with_file, unwritable, voiced_end
from tests.conftest import ROOT
from tests.fakes import tone_pcm
from tests.speech import write_wav
from utils.audio import SAMPLE_RATE


def tone(seconds: float, amplitude: float = 0.3) -> np.ndarray:
    return np.frombuffer(tone_pcm(seconds, amplitude=amplitude), dtype="<i2")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), "<i2")


class ScriptedServer:
    """The server's two ports on loopback; `script(inbound, outbound)` plays the server's side in a thread."""

    def __init__(self, script):
        self.listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
        self.recv_port, self.send_port = (listener.getsockname()[1] for listener in self.listeners)
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script):
        inbound, _ = self.listeners[0].accept()
        outbound, _ = self.listeners[1].accept()
        with inbound, outbound:
            inbound.settimeout(10)
            script(inbound, outbound)

    def client_flags(self) -> list[str]:
        return ["--send_port", str(self.recv_port), "--recv_port", str(self.send_port)]

    def close(self):
        for listener in self.listeners:
            listener.close()


def hear(inbound: socket.socket, seconds: float) -> None:
    """Read the question until `seconds` of it have arrived."""
    need = 2 * int(seconds * SAMPLE_RATE)
    while need > 0:
        data = inbound.recv(min(need, 4096))
        assert data, "the client hung up"
        need -= len(data)


def until_the_client_leaves(inbound: socket.socket) -> None:
    try:
        while inbound.recv(4096):
            pass
    except OSError:
        pass


def run_client(*flags, timeout=30):
    return subprocess.run([sys.executable, "listen_and_play.py", *flags], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_voiced_end_ignores_trailing_silence_and_hiss():
    assert abs(voiced_end(np.concatenate([tone(0.5), silence(1.5)])) - 8000) <= VOICE_WINDOW
    hiss = (np.random.default_rng(0).normal(0, 30, 16000)).astype("<i2")  # about -60 dBFS
    assert abs(voiced_end(np.concatenate([tone(0.5), hiss])) - 8000) <= VOICE_WINDOW


def test_voiced_end_whatever_the_recording_level():
    assert abs(voiced_end(np.concatenate([tone(0.5, amplitude=0.005), silence(1.0)])) - 8000) <= VOICE_WINDOW
    # a quieter ending (-12 dB) is still the question
    fading = np.concatenate([tone(0.5), tone(0.3, amplitude=0.075), silence(1.0)])
    assert abs(voiced_end(fading) - 12800) <= VOICE_WINDOW


def test_voiced_end_of_a_file_without_voice_is_its_end():
    assert voiced_end(silence(1.0)) == 16000
    assert voiced_end(tone(0.5)) == 8000
    assert voiced_end(np.zeros(0, "<i2")) == 0


def test_latency_is_measured_from_the_last_voiced_sample():
    """The server answers 0.5 s after the voice ended, 1 s before the file ends: the latency is 0.5 s, not -1 s."""
    reply_audio = tone_pcm(0.3)

    def script(inbound, outbound):
        hear(inbound, 1.0)
        outbound.sendall(reply_audio)
        until_the_client_leaves(inbound)

    server = ScriptedServer(script)
    try:
        reply, question_end = talk_with_file("127.0.0.1", server.recv_port, server.send_port,
                                             np.concatenate([tone(0.5), silence(1.5)]), silence_s=5,
                                             reply_idle_s=0.4, timeout_s=10)
    finally:
        server.close()
    assert bytes(reply.audio) == reply_audio and not reply.cut_off
    assert 0.3 < reply.first_at - question_end < 0.8


@pytest.mark.parametrize("delay_s, line", [
    (0.4321, "first audio 432 ms after the question ended"),
    (0.0, "first audio 0 ms after the question ended"),
    (-0.25, "reply started while the question was still being sent (250 ms before its end)"),
])
def test_latency_is_never_negative(delay_s, line):
    assert describe_latency(delay_s) == line


def test_a_reply_during_the_question_is_said_so(tmp_path):
    def script(inbound, outbound):
        hear(inbound, 0.5)
        outbound.sendall(tone_pcm(0.3))
        until_the_client_leaves(inbound)

    question = tmp_path / "q.wav"
    write_wav(question, tone(2.0))
    server = ScriptedServer(script)
    try:
        result = run_client(*server.client_flags(), "--input_file", str(question), "--reply_idle_s", "0.5")
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("reply:")]
    assert len(said) == 1 and "reply started while the question was still being sent (" in said[0], result.stderr
    assert " -" not in said[0]


def cutting_server(sent: bytes) -> ScriptedServer:
    """Answers with the first part of a reply, then closes both connections, as a server that dies mid-reply."""
    def script(inbound, outbound):
        hear(inbound, 0.5)
        outbound.sendall(sent)
        time.sleep(0.1)

    return ScriptedServer(script)


def test_a_reply_the_server_cut_off_is_marked():
    sent = tone_pcm(0.2)
    server = cutting_server(sent)
    try:
        reply, _ = talk_with_file("127.0.0.1", server.recv_port, server.send_port, tone(0.5), silence_s=5,
                                  reply_idle_s=2.0, timeout_s=10)
    finally:
        server.close()
    assert reply.cut_off and bytes(reply.audio) == sent


def test_a_cut_off_reply_is_saved_but_exits_1(tmp_path):
    sent = tone_pcm(0.2)
    question, saved = tmp_path / "q.wav", tmp_path / "r.wav"
    write_wav(question, tone(0.5))
    server = cutting_server(sent + b"\x01")  # the server died half-way through a sample
    try:
        result = run_client(*server.client_flags(), "--input_file", str(question), "--output_file", str(saved))
    finally:
        server.close()
    assert result.returncode == 1, result.stderr
    said = "error: the reply was cut off: the server closed the connection before its end"
    assert f"{said}; saved what came to {saved}" in result.stderr.splitlines()
    audio, rate = sf.read(saved, dtype="int16")
    assert rate == SAMPLE_RATE and audio.tobytes() == sent


def test_a_server_that_hangs_up_without_a_reply_says_so(tmp_path):
    question = tmp_path / "q.wav"
    write_wav(question, tone(0.5))
    server = ScriptedServer(lambda inbound, outbound: hear(inbound, 0.3))
    try:
        result = run_client(*server.client_flags(), "--input_file", str(question))
    finally:
        server.close()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: no reply from the server (it closed the connection)"


@pytest.mark.parametrize("where, problem", [
    ("missing/r.wav", "cannot write --output_file {path}: folder {folder} does not exist"),
    ("folder", "cannot write --output_file {path}: Is a directory"),
])
def test_an_output_file_that_cannot_be_written_fails_before_connecting(tmp_path, where, problem):
    question, path = tmp_path / "q.wav", tmp_path / where
    write_wav(question, tone(0.5))
    (tmp_path / "folder").mkdir()
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    ports = [str(listener.getsockname()[1]) for listener in listeners]
    try:
        result = run_client("--send_port", ports[0], "--recv_port", ports[1], "--input_file", str(question),
                            "--output_file", str(path))
        for listener in listeners:
            listener.setblocking(False)
            with pytest.raises(BlockingIOError):  # nobody connected
                listener.accept()
    finally:
        for listener in listeners:
            listener.close()
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: " + problem.format(path=path, folder=path.parent)]


def test_an_output_file_that_is_a_folder_is_refused(tmp_path):
    folder = tmp_path / "reply.wav"
    folder.mkdir()
    assert unwritable(str(folder)) == f"cannot write --output_file {folder}: Is a directory"


def test_checking_the_output_file_leaves_no_trace(tmp_path):
    new, existing = tmp_path / "new.wav", tmp_path / "old.wav"
    existing.write_bytes(b"keep me")
    assert unwritable(str(new)) is None and unwritable(str(existing)) is None
    assert not new.exists() and existing.read_bytes() == b"keep me"
