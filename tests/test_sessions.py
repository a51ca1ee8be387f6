"""Several clients at once, clients that leave, misbehave or never read: on loopback, bounded in count and time."""
import gc
import socket
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connections.client_session import BURST_S
from listen_and_play import connect, converse
from tests.fake_server import FakeServer
from tests.fakes import DurationWhisper, FakeWhisper, ScriptedVADModel, silence_pcm, tone_pcm
from utils.audio import BYTES_PER_SECOND, SAMPLE_RATE


def tone(seconds):
    return np.frombuffer(tone_pcm(seconds), dtype="<i2")


def reply_seconds(reply):
    return len(reply.audio) / 2 / SAMPLE_RATE


@pytest.fixture
def servers():
    made = []

    def make(whisper=None, *flags):
        made.append(FakeServer(whisper or DurationWhisper(), *flags))
        return made[-1]

    yield make
    for server in made:
        assert server.stop() == []


def ask_concurrently(server, questions, **options):
    results = [None] * len(questions)

    def one(i):
        results[i] = converse("127.0.0.1", server.recv_port, server.send_port, [questions[i]],
                              **{"silence_s": 8, "reply_idle_s": 0.5, "timeout_s": 15, **options})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return [r[0][0] if r else None for r in results]


def test_four_conversations_at_once_each_get_their_own_answer(servers):
    server = servers()
    # each client's question has its own length -> its own transcript -> its own answer length
    # (lengths 5 "words" apart; the VAD's padding and 32 ms windows add up to one word)
    lengths = [0.6, 1.1, 1.6, 2.1]
    replies = ask_concurrently(server, [tone(s) for s in lengths])
    for seconds, reply in zip(lengths, replies):
        words = seconds * 10 + 2  # "You said:" + the words heard, 0.1 s of tone each
        assert abs(reply_seconds(reply) - words * 0.1) <= 0.15, (seconds, reply_seconds(reply))
    # and no history leaked between them: every request had only the system prompt and its own question
    assert sorted(len(m[0]) for m in server.llm.requests) == [2, 2, 2, 2]


def test_a_client_over_the_limit_is_refused_and_the_others_are_served(servers):
    server = servers(None, "--max_sessions", "2")
    holders = [connect("127.0.0.1", server.recv_port) for _ in range(2)]
    time.sleep(0.3)
    refused = connect("127.0.0.1", server.recv_port)
    refused.settimeout(3)
    received = b""
    while data := refused.recv(256):  # a notice of why, then closed by the server
        received += data
    assert received.startswith(b"S2S0") and b"--max_sessions" in received
    for holder in holders:
        holder.close()
    time.sleep(0.3)
    (reply, _), = converse("127.0.0.1", server.recv_port, server.send_port, [tone(0.8)], silence_s=5,
                           reply_idle_s=0.5, timeout_s=10)
    assert reply.first_at is not None


def threads_now():
    return {t for t in threading.enumerate() if t.name.startswith("client-")}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


MEMORY_BOUND_MB = 30  # growth allowed over 100 cycles (allocator noise; a leak of one reply per cycle is ~100 MB)


def test_a_hundred_connect_disconnect_cycles_leak_no_threads_or_memory(servers):
    server = servers()
    rng = np.random.default_rng(7)
    rss_before = None
    for cycle in range(110):
        if cycle == 10:  # after a warm-up: lazily allocated buffers are not a leak
            gc.collect()
            rss_before = rss_mb()
        send, recv = connect("127.0.0.1", server.recv_port), connect("127.0.0.1", server.send_port)
        kind = cycle % 4
        if kind == 1:  # leaves mid-question
            send.sendall(tone_pcm(0.3))
        elif kind == 2:  # leaves with a reply on its way
            send.sendall(tone_pcm(0.6) + silence_pcm(0.4))
            time.sleep(0.05)
        elif kind == 3:  # garbage
            send.sendall(rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes())
        send.close(), recv.close()
    deadline = time.monotonic() + 10
    while (threads_now() or len(server.registry_sessions()) > 0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert threads_now() == set()
    assert server.registry_sessions() == []
    gc.collect()
    growth = rss_mb() - rss_before
    print(f"RSS growth over 100 cycles: {growth:.1f} MB")
    assert growth < MEMORY_BOUND_MB
    (reply, _), = converse("127.0.0.1", server.recv_port, server.send_port, [tone(0.8)], silence_s=5,
                           reply_idle_s=0.5, timeout_s=10)
    assert reply.first_at is not None


def test_a_client_that_never_reads_is_dropped_without_blocking_the_others(servers, monkeypatch):
    import connections.client_session as client_session

    monkeypatch.setattr(client_session, "OUTBOX_BLOCKS", 20)
    monkeypatch.setattr(client_session, "SEND_TIMEOUT_S", 1.0)
    server = servers(FakeWhisper(" ".join(["word"] * 3000), *["hello"] * 10))
    deaf_send = connect("127.0.0.1", server.recv_port)
    deaf_recv = socket.socket()
    deaf_recv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    deaf_recv.connect(("127.0.0.1", server.send_port))  # connected, never read
    deaf_send.sendall(tone_pcm(0.8) + silence_pcm(0.5))
    time.sleep(2)
    (reply, _), = converse("127.0.0.1", server.recv_port, server.send_port, [tone(0.8)], silence_s=8,
                           reply_idle_s=0.5, timeout_s=30)
    assert reply.first_at is not None  # served while (or after) the deaf client was dropped
    deadline = time.monotonic() + 15
    while len(server.registry_sessions()) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.registry_sessions() == []  # the deaf one is gone too
    deaf_send.close(), deaf_recv.close()


def test_a_silent_client_is_disconnected_after_the_idle_timeout(servers):
    server = servers(None, "--idle_timeout_s", "1")
    quiet = connect("127.0.0.1", server.recv_port)
    quiet.settimeout(5)
    t = time.monotonic()
    received = b""
    while data := quiet.recv(64):  # the pairing token, then the end of the connection
        received += data
    assert time.monotonic() - t < 4
    assert received[:4] == b"S2S1" and received[8:12] == b"S2S0"  # the pairing token, then why it ends
    assert b"sent no audio for 1 s" in received
    quiet.close()


def test_a_flooding_client_is_throttled_and_the_others_are_served(servers):
    server = servers()
    flood, flood_recv = connect("127.0.0.1", server.recv_port), connect("127.0.0.1", server.send_port)
    stop = threading.Event()

    def pour():
        chunk = silence_pcm(1.0)
        try:
            while not stop.is_set():
                flood.sendall(chunk)
        except OSError:
            pass

    pourer = threading.Thread(target=pour, daemon=True)
    pourer.start()
    time.sleep(1.0)
    (reply, _), = converse("127.0.0.1", server.recv_port, server.send_port, [tone(0.8)], silence_s=5,
                           reply_idle_s=0.5, timeout_s=15)
    assert reply.first_at is not None
    [flooder] = [s for s in server.registry_sessions() if s.peer.endswith(f":{flood.getsockname()[1]}")]
    # the excess was dropped at the door: what got in is real time plus the burst allowance
    assert flooder.dropped_input > 0
    assert flooder.admitted_bytes <= (time.monotonic() - flooder.created + BURST_S) * BYTES_PER_SECOND
    assert server.queues.audio_frames.qsize() < server.queues.audio_frames.maxsize  # ...not queued
    stop.set()
    flood.close(), flood_recv.close()
    pourer.join(2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(min_size=0, max_size=3000), max_size=12))
def test_the_receive_path_takes_any_bytes(chunks):
    """Random frames of any size through the VAD: never an exception, never more than a window kept back."""
    import queue

    from arguments_classes.parsing import parse_arguments
    from utils.pipeline.messages import END, AudioFrame, Conversation
    from VAD.vad_handler import VADHandler

    q_in, q_out = queue.Queue(), queue.Queue()
    handler = VADHandler(threading.Event(), q_in, q_out,
                         setup_kwargs={"config": parse_arguments([]).vad, "model": ScriptedVADModel()})
    conversation = Conversation()
    for chunk in chunks:
        q_in.put(AudioFrame(chunk, conversation))
    q_in.put(END)
    handler.run()
    assert handler.errors == 0
    assert len(handler._stream(conversation).pending) < 1024


def test_audio_beyond_real_time_and_the_burst_is_dropped_and_real_time_audio_after_it_is_kept():
    """The pacing itself, on one session: a flood fills the burst allowance and the rest is dropped; once the
    client streams at real time again its audio goes through (the dropped excess is not held against it)."""
    import queue

    from connections.client_session import ClientSession
    from utils.metrics import TurnMetrics

    ours, client = socket.socketpair()
    frames = queue.Queue()
    session = ClientSession(ours, "127.0.0.1:1", frames, TurnMetrics(), 4096, idle_timeout_s=60,
                            on_close=lambda s: None)
    session.start()

    def admitted_bytes():
        total = 0
        while not frames.empty():
            total += len(frames.get_nowait().pcm)
        return total

    try:
        client.sendall(bytes(int(3 * BURST_S * BYTES_PER_SECOND)))  # 15 s of audio at once
        time.sleep(0.3)
        flood = admitted_bytes()
        assert BURST_S * BYTES_PER_SECOND - 4096 <= flood <= (BURST_S + 1) * BYTES_PER_SECOND  # whole chunks
        assert session.dropped_input > 0
        dropped = session.dropped_input
        for _ in range(10):  # then 1 s at real time, in 0.1 s blocks
            client.sendall(bytes(BYTES_PER_SECOND // 10))
            time.sleep(0.1)
        time.sleep(0.2)
        assert admitted_bytes() == BYTES_PER_SECOND and session.dropped_input == dropped
    finally:
        session.close("test over")
        client.close()
