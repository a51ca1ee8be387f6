"""The whole server (real handlers, real sockets on loopback) with instant fake models."""
import time

import numpy as np
import pytest

from listen_and_play import converse
from tests.fake_server import QUESTION, FakeServer
from tests.fakes import FakeWhisper


@pytest.fixture
def make_server():
    servers = []

    def make(*texts):
        servers.append(FakeServer(FakeWhisper(*texts)))
        return servers[-1]

    yield make
    for server in servers:
        assert server.stop() == []


def test_a_question_gets_a_spoken_reply(make_server, capsys):
    server = make_server("what time is it")
    reply = server.ask()
    # "You said: what time is it" -> 6 words of tone at 0.1 s each
    assert abs(len(reply.audio) / 2 / 16000 - 0.6) < 0.1
    messages = server.llm.requests[0][0]
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[-1] == {"role": "user", "content": "what time is it"}
    out = capsys.readouterr().out
    assert "USER: what time is it" in out and "ASSISTANT: You said: what time is it" in out
    assert len(server.metrics.first_audio_latencies) == 1


def test_history_is_kept_within_a_conversation_and_reset_for_the_next_client(make_server):
    server = make_server("first question", "second question", "third question")
    replies = converse("127.0.0.1", server.recv_port, server.send_port, [QUESTION, QUESTION], silence_s=5,
                       reply_idle_s=0.4, timeout_s=10)
    assert len(server.llm.requests) == 2
    second_messages = server.llm.requests[1][0]
    assert second_messages[0]["content"].endswith("User: first question\nAssistant: You said: first question")
    assert [m["content"] for m in second_messages[1:]] == ["second question"]
    server.ask()  # a new client: a new conversation
    third_messages = server.llm.requests[2][0]
    assert [m["content"] for m in third_messages] == ["Be brief.", "third question"]
    assert [len(reply.audio) > 0 for reply, _ in replies] == [True, True]


def test_a_failing_stage_drops_the_turn_and_the_server_keeps_serving(make_server):
    server = make_server(RuntimeError("decoder crashed"), "are you still there")
    # one conversation: the first question fails (no reply), the second is heard and answered
    (first, _), (second, _) = converse("127.0.0.1", server.recv_port, server.send_port, [QUESTION, QUESTION],
                                       silence_s=5, reply_idle_s=0.4, timeout_s=3)
    assert first.first_at is None
    assert len(second.audio) > 0
    assert [r[0][-1]["content"] for r in server.llm.requests] == ["are you still there"]


def test_a_client_leaving_mid_reply_leaves_nothing_for_the_next(make_server):
    server = make_server("tell me a long story " * 10, "short one")
    from listen_and_play import connect

    send, recv = connect("127.0.0.1", server.recv_port), connect("127.0.0.1", server.send_port)
    for i in range(0, len(QUESTION), 512):
        send.sendall(QUESTION[i:i + 512].tobytes())
    send.sendall(bytes(32000))
    deadline = time.monotonic() + 5
    while not server.tts.texts and time.monotonic() < deadline:
        time.sleep(0.02)
    send.close(), recv.close()  # gone before the reply was sent
    reply = server.ask()
    # exactly the short answer: "You said: short one" (4 words), nothing of the long story
    assert abs(len(reply.audio) / 2 / 16000 - 0.4) < 0.07


def test_garbage_bytes_do_not_break_the_server(make_server):
    server = make_server("hello after garbage")
    from listen_and_play import connect

    send, recv = connect("127.0.0.1", server.recv_port), connect("127.0.0.1", server.send_port)
    rng = np.random.default_rng(0)
    send.sendall(rng.integers(0, 256, 33333, dtype=np.uint8).tobytes())  # odd size, noise
    send.close(), recv.close()
    time.sleep(0.3)
    assert server.manager.any_alive() and all(t.is_alive() for t in server.manager.threads)
    reply = server.ask()
    assert len(reply.audio) > 0
