"""Both sides of connections/handshake.py on a socket pair: what the server writes, what a client reads of it."""
import socket
import threading
import time

import pytest

from connections import handshake


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    yield server, client
    server.close(), client.close()


def test_a_client_reads_the_token_it_then_sends_on_its_reply_connection(pair):
    server, client = pair
    nonce = handshake.new_nonce()

    def write_in_two_pieces():
        server.sendall(handshake.token(nonce)[:3])
        time.sleep(0.05)
        server.sendall(handshake.token(nonce)[3:])

    threading.Thread(target=write_in_two_pieces).start()
    token = handshake.read_token(client)
    assert token == handshake.token(nonce) and handshake.parse(token) == nonce


def test_a_refusal_is_raised_with_its_reason(pair):
    server, client = pair
    handshake.send_notice(server, "refused: the server is full")
    with pytest.raises(handshake.Refused, match="^refused: the server is full$"):
        handshake.read_token(client)


def test_a_server_that_writes_no_token_gives_none_after_the_wait(pair):
    _, client = pair
    started = time.monotonic()
    assert handshake.read_token(client, wait_s=0.2) == b""
    assert 0.15 < time.monotonic() - started < 1.0


def test_a_notice_after_the_token_is_read_as_the_reason_for_closing(pair):
    server, client = pair
    server.sendall(handshake.token(7))
    handshake.send_notice(server, "sent no audio for 1 s")
    assert handshake.read_token(client) == handshake.token(7)
    assert handshake.read_notice(client) == "sent no audio for 1 s"
    assert handshake.read_notice(client, wait_s=0.1) is None  # nothing more


def test_the_reason_for_closing_is_read_past_control_frames_and_across_split_writes(pair):
    server, client = pair
    server.sendall(handshake.token(7))
    assert handshake.read_token(client) == handshake.token(7)
    data = handshake.control(handshake.HOLD) + handshake.control(handshake.FLUSH) + handshake.notice("shutting down")

    def write_slowly():
        for k in range(0, len(data), 5):
            server.sendall(data[k:k + 5])
            time.sleep(0.01)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    assert handshake.read_notice(client, wait_s=2.0) == "shutting down"
    writer.join()


def test_garbage_instead_of_a_notice_gives_none_at_once(pair):
    server, client = pair
    server.sendall(b"HTTP/1.1 200 OK\r\n")
    started = time.monotonic()
    assert handshake.read_notice(client, wait_s=2.0) is None
    assert time.monotonic() - started < 1.0
