"""listen_and_play.py on real PortAudio devices: its microphone and speaker in a PulseAudio room, the
socket server on loopback with the real default models."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import ROOT, ServerProcess
from tests.speech import espeak, write_wav
from tests.test_local_mode import SOUND, read_room, sound_spans
from tests.transcribe import transcribe, word_recall, words

pytestmark = pytest.mark.integration


def test_the_client_talks_and_listens_through_real_devices(in_room, tmp_path):
    question = espeak("What is the capital of Germany?")
    loud = np.flatnonzero(np.abs(question.astype(np.int32)) >= SOUND)
    question_sound_s = (loud[-1] - loud[0]) / 16000
    write_wav(tmp_path / "question.wav", question)

    server = ServerProcess()
    client = subprocess.Popen(
        [sys.executable, "-u", str(ROOT / "listen_and_play.py"), "--send_port", str(server.recv_port),
         "--recv_port", str(server.send_port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    recorder = in_room.record(tmp_path / "room.raw")
    try:
        server.wait_for(lambda: any("connected" in line for line in server.stderr), 30, "the client to connect")
        time.sleep(1.0)
        in_room.play(tmp_path / "question.wav")
        server.wait_for(lambda: server.lines("ASSISTANT:"), 60, "an ASSISTANT line")

        def reply_has_ended():
            room = read_room(tmp_path / "room.raw")
            sound = sound_spans(room)
            question_end = sound[0] + question_sound_s * 16000 if len(sound) else len(room)
            reply = sound[sound > question_end + 800]
            return len(reply) and len(room) - reply[-1] > 1.5 * 16000

        server.wait_for(reply_has_ended, 60, "the reply to be played into the room")
        time.sleep(3.0)  # time enough to hear itself, were the client not half-duplex
    finally:
        recorder.terminate()
        recorder.wait(5)
        client.send_signal(signal.SIGINT)
        try:
            client_code = client.wait(10)
        except subprocess.TimeoutExpired:
            client.kill()
            client_code = "hung"
        server.stop()

    assert client_code == 0, client.stderr.read()
    users, replies = server.lines("USER:"), server.lines("ASSISTANT:")
    assert len(users) == 1, users  # the question, once; never its own reply
    assert {"capital", "germany"} <= set(words(users[0])), users[0]
    room = read_room(tmp_path / "room.raw")
    sound = sound_spans(room)
    question_end = sound[0] + int(question_sound_s * 16000)
    reply = sound[sound > question_end + 800]
    heard = transcribe(room[reply[0]:reply[-1] + 3200])
    assert word_recall(replies[0], heard) >= 0.6, f"assistant said {replies[0]!r}, the room heard {heard!r}"
