"""A hostile or clumsy local process against the socket server, on loopback: nobody takes another's reply,
nobody locks the others out, a refused client learns why. Fake models, real sockets and threads."""
import socket
import threading
import time

import numpy as np
import pytest

from connections import handshake
from listen_and_play import ClientError, connect, converse
from tests.fake_server import FakeServer
from tests.fakes import DurationWhisper, silence_pcm, tone_pcm
from utils.audio import SAMPLE_RATE


def tone(seconds):
    return np.frombuffer(tone_pcm(seconds), dtype="<i2")


def expected_reply_s(question_s):
    return (question_s * 10 + 2) * 0.1  # DurationWhisper + EchoLLM + ToneTTS: "You said:" + a word per 0.1 s


@pytest.fixture
def servers():
    made = []

    def make(*flags):
        made.append(FakeServer(DurationWhisper(), *flags))
        return made[-1]

    yield make
    for server in made:
        assert server.stop() == []


def read_all(sock, seconds):
    """Everything that arrives on `sock` within `seconds` (or until it closes)."""
    sock.settimeout(0.1)
    data, deadline = bytearray(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        data.extend(chunk)
    return bytes(data)


class ClassicClient:
    """The reference client: audio connection first, then the reply connection; never sends a token,
    never reads its audio connection."""

    def __init__(self, server, connect_reply=True):
        self.server = server
        self.audio = connect("127.0.0.1", server.recv_port)
        self.reply = connect("127.0.0.1", server.send_port) if connect_reply else None
        self.received = b""

    def connect_reply(self):
        self.reply = connect("127.0.0.1", self.server.send_port)

    def ask(self, question_s, listen_s=6.0):
        """Stream the question and silence at real time on a thread while collecting the reply."""
        def stream():
            pcm = tone_pcm(question_s) + silence_pcm(2.0)
            try:
                for i in range(0, len(pcm), 1024):
                    self.audio.sendall(pcm[i:i + 1024])
                    time.sleep(1024 / 2 / SAMPLE_RATE)
            except OSError:
                pass

        streamer = threading.Thread(target=stream, daemon=True)
        streamer.start()
        self.received = read_all(self.reply, listen_s)
        streamer.join(5)
        return self.received

    def close(self):
        for sock in (self.audio, self.reply):
            if sock is not None:
                sock.close()


def test_held_reply_sockets_take_nobody_s_reply(servers):
    server = servers()
    held = [connect("127.0.0.1", server.send_port) for _ in range(3)]  # open before anyone, never send
    (reply, _), = converse("127.0.0.1", server.recv_port, server.send_port, [tone(0.8)], silence_s=5,
                           reply_idle_s=0.5, timeout_s=10)
    assert abs(len(reply.audio) / 2 / SAMPLE_RATE - expected_reply_s(0.8)) <= 0.15  # the token client: its own reply
    classic = ClassicClient(server)
    got = classic.ask(1.3)
    classic.close()
    assert abs(len(got) / 2 / SAMPLE_RATE - expected_reply_s(1.3)) <= 0.15  # the classic client too
    for sock in held:
        assert read_all(sock, 0.5) == b""  # closed by the server without a byte of anyone's reply
        sock.close()


def test_a_reply_connection_sent_with_a_guessed_token_gets_nothing(servers):
    server = servers()
    victim = connect("127.0.0.1", server.recv_port)
    token = read_all(victim, 0.5)[:handshake.TOKEN_SIZE]
    assert handshake.parse(token) is not None
    # the conversation numbers are small integers: guessing them must not pair
    guessers = [connect("127.0.0.1", server.send_port) for _ in range(20)]
    for n, sock in enumerate(guessers):
        sock.sendall(handshake.MAGIC + n.to_bytes(4, "little"))
    time.sleep(0.5)
    session, = server.registry_sessions()
    assert not session.has_reply_connection
    mine = connect("127.0.0.1", server.send_port)
    mine.sendall(token)
    deadline = time.monotonic() + 2
    while not session.has_reply_connection and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session.has_reply_connection
    for sock in guessers + [mine, victim]:
        sock.close()


def test_near_simultaneous_classic_clients_never_hear_each_other(servers):
    server = servers()
    a = ClassicClient(server, connect_reply=False)
    b = ClassicClient(server, connect_reply=False)
    b.connect_reply()  # their reply connections in the other order
    a.connect_reply()
    results = {}
    threads = [threading.Thread(target=lambda c=c, s=s: results.setdefault(s, c.ask(s, listen_s=8))) for c, s in
               ((a, 0.6), (b, 2.1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    a.close(), b.close()
    for question_s, got in results.items():
        seconds = len(got) / 2 / SAMPLE_RATE
        # either refused (nothing) or its own answer: never the other's
        assert seconds == 0 or abs(seconds - expected_reply_s(question_s)) <= 0.15, (question_s, seconds)
    assert len(results) == 2


def test_trickling_connections_cannot_lock_out_a_real_client(servers):
    server = servers("--max_sessions", "4", "--idle_timeout_s", "8")
    stop = threading.Event()
    tricklers = [connect("127.0.0.1", server.recv_port) for _ in range(4)]

    def trickle():
        while not stop.is_set():
            for sock in tricklers:
                try:
                    sock.sendall(b"\0\0")
                except OSError:
                    pass
            stop.wait(0.5)

    threading.Thread(target=trickle, daemon=True).start()
    time.sleep(0.5)
    assert len(server.registry_sessions()) == 4
    started, reply = time.monotonic(), None
    refusals = 0
    while time.monotonic() - started < 12:  # the idle deadline (8 s) and then some
        try:
            (reply, _), = converse("127.0.0.1", server.recv_port, server.send_port, [tone(0.8)], silence_s=5,
                                   reply_idle_s=0.5, timeout_s=10)
        except ClientError:  # refused: full
            refusals += 1
            time.sleep(0.5)
            continue
        if reply.first_at is not None:
            break
    stop.set()
    waited = time.monotonic() - started
    for sock in tricklers:
        sock.close()
    assert reply is not None and reply.first_at is not None, f"locked out for {waited:.1f} s"
    assert abs(len(reply.audio) / 2 / SAMPLE_RATE - expected_reply_s(0.8)) <= 0.15


def test_a_refused_client_is_told_why(servers):
    server = servers("--max_sessions", "1")
    holder = connect("127.0.0.1", server.recv_port)
    holder.sendall(silence_pcm(0.5))  # streaming: not a place to take back
    time.sleep(0.3)
    refused = connect("127.0.0.1", server.recv_port)
    reason = handshake.read_notice(refused, wait_s=2)
    assert reason is not None and "full" in reason and "--max_sessions" in reason
    refused.close(), holder.close()


def test_trickled_tokens_do_not_stall_the_reply_port(servers):
    server = servers()
    stop = threading.Event()
    slow = [connect("127.0.0.1", server.send_port) for _ in range(10)]

    def drip():
        step = 0
        while not stop.is_set():
            for sock in slow:
                try:
                    sock.sendall(handshake.MAGIC[step % 4:step % 4 + 1])
                except OSError:
                    pass
            step += 1
            stop.wait(0.4)

    threading.Thread(target=drip, daemon=True).start()
    many = [socket.create_connection(("127.0.0.1", server.send_port), timeout=5) for _ in range(50)]  # no stall
    (reply, _), = converse("127.0.0.1", server.recv_port, server.send_port, [tone(0.8)], silence_s=5,
                           reply_idle_s=0.5, timeout_s=10)
    stop.set()
    for sock in slow + many:
        sock.close()
    assert abs(len(reply.audio) / 2 / SAMPLE_RATE - expected_reply_s(0.8)) <= 0.15


def test_a_classic_client_whose_first_reply_connection_died_gets_its_reply_on_the_next(servers):
    server = servers()
    classic = ClassicClient(server, connect_reply=False)
    dead = connect("127.0.0.1", server.send_port)
    dead.close()  # gone before it could be paired: must not take the place of the live one
    classic.connect_reply()
    got = classic.ask(0.8)
    classic.close()
    assert abs(len(got) / 2 / SAMPLE_RATE - expected_reply_s(0.8)) <= 0.15


def test_the_project_client_prints_why_it_was_refused(servers):
    from listen_and_play import ClientError, connect_pair

    server = servers("--max_sessions", "1")
    holder = connect("127.0.0.1", server.recv_port)
    holder.sendall(silence_pcm(0.5))
    time.sleep(0.3)
    with pytest.raises(ClientError, match=r"the server said: refused: the server is full: 1 conversations already"):
        connect_pair("127.0.0.1", server.recv_port, server.send_port)
    holder.close()


def test_too_many_conversations_from_one_address_are_refused(servers):
    server = servers("--max_sessions", "4", "--max_sessions_per_host", "2")
    holders = [connect("127.0.0.1", server.recv_port) for _ in range(2)]
    third = connect("127.0.0.1", server.recv_port)
    reason = handshake.read_notice(third, wait_s=2)
    assert reason is not None and "--max_sessions_per_host" in reason
    for sock in holders + [third]:
        sock.close()


def test_a_client_is_refused_until_the_server_is_ready_then_accepted():
    """The ports are taken at start-up (a busy port fails fast) but accept nobody while the models load:
    a client that came early would talk to a server that cannot answer, and be answered late."""
    import queue

    from arguments_classes.parsing import parse_arguments
    from connections.socket_server import SessionRegistry, SocketServer
    from tests.conftest import free_port
    from utils.metrics import TurnMetrics

    ports = free_port(), free_port()
    config = parse_arguments(["--recv_port", str(ports[0]), "--send_port", str(ports[1])])
    stop = threading.Event()
    server = SocketServer(stop, queue.Queue(), SessionRegistry(4), TurnMetrics(), config.receiver, config.sender)
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()  # what the pipeline does once every model is loaded
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", ports[0]), timeout=2)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert handshake.parse(read_all(sock, 1.0)[:handshake.TOKEN_SIZE]) is not None
        sock.close()
    finally:
        stop.set()
        runner.join(5)
