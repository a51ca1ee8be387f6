"""The full-duplex pieces with fakes: the echo reference by time, the cleaned microphone's framing, the speaker's
hold and flush, the S2S2 token, the server's control frames, and the socket server's reply pacing and cut."""
from __future__ import annotations

import queue
import socket
import threading
import time

import numpy as np

from connections import handshake
from connections.client_session import PLAYBACK_LEAD_S, ClientSession
from connections.full_duplex import CleanMicrophone, EchoReference, SampleClock, reference_lead
from connections.half_duplex import SpeakerBuffer
from listen_and_play import obey_server
from utils.metrics import TurnMetrics
from utils.pipeline.messages import AudioOut, Turn


def test_the_reference_gives_what_sounded_in_a_window_and_silence_elsewhere():
    ref = EchoReference()
    ref.played(b"", 160, callback_time=9.99, output_delay_s=0.0)  # 10 ms of silence
    ref.played(np.arange(1, 161, dtype="<i2").tobytes(), 160, callback_time=10.0, output_delay_s=0.0)
    window = ref.window(10.005, 160)  # from 5 ms into it: its second half, then silence
    assert list(window[:80]) == list(range(81, 161)) and not window[80:].any()
    assert not ref.window(20.0, 160).any()


def test_late_callbacks_do_not_move_the_reference():
    ref = EchoReference()
    ref.played(b"", 160, callback_time=1.0, output_delay_s=0.05)
    ref.played(np.full(160, 7, "<i2").tobytes(), 160, callback_time=1.04, output_delay_s=0.05)  # 30 ms late
    window = ref.window(1.062, 100)  # the second block sounds from 1.0 + 0.05 + 0.01 on, by the sample clock
    assert (window == 7).all()


def test_a_clock_fooled_by_a_stream_start_recovers():
    # PortAudio fills the device's buffer as the stream starts (3 callbacks at once), then the device plays 1.8 s later
    clock = SampleClock()
    for k in range(3):
        clock.observe(0.0, k * 256)
    assert clock.t0 < 1.8 - 1.0  # fooled: the first samples seem to have played at once
    rng = np.random.default_rng(0)
    for k in range(3, 200):  # 16 ms blocks, each callback up to 20 ms late
        clock.observe(1.8 + (k - 3) * 0.016 + rng.uniform(0, 0.02), k * 256)
    assert abs(clock.t0 - (1.8 - 3 * 0.016)) < 0.005


def test_a_clock_follows_an_underrun_within_half_a_second():
    clock = SampleClock()
    for k in range(100):
        clock.observe(k * 0.016, k * 256)
    for k in range(100, 200):  # the device ran dry: 32 ms of silence it played that no callback counted
        clock.observe(k * 0.016 + 0.032 + (0.003 if k % 2 else 0.0), k * 256)
    assert abs(clock.t0 - 0.032) < 0.001


def test_the_reference_leads_by_what_the_speaker_already_has():
    assert abs(reference_lead(0.032, 0.032) - 0.054) < 1e-9  # a block cleaned on arrival: 64 ms of audio are known
    assert reference_lead(0.2, 0.2) == 0.12  # never more than the canceller's comfortable reach
    assert reference_lead(0.0, 0.005) == 0.0


class Subtract:
    """A 'canceller' that takes the reference out exactly, and records the frames it got."""

    def __init__(self):
        self.frames = []

    def process(self, mic, played):
        self.frames.append(len(mic))
        return (mic.astype(np.int32) - played).astype("<i2")


def test_the_clean_microphone_cuts_blocks_into_10_ms_frames_and_removes_the_echo():
    ref = EchoReference()
    echo = (np.sin(np.arange(512) / 5) * 3000).astype("<i2")
    ref.played(echo.tobytes(), 512, callback_time=100.0, output_delay_s=0.0)
    canceller = Subtract()
    mic = CleanMicrophone(canceller, ref, input_latency_s=0.0, output_latency_s=0.06)  # lead: 60 - 10 ms
    # the block it is given goes with the reference 50 ms later (a canceller wants the reference first):
    # a microphone block that is exactly that reference cancels to nothing
    out = mic.process(echo.tobytes(), captured_at=100.0 - 0.05 + 512 / 16000)
    assert canceller.frames == [160, 160, 160] and len(out) == 480 * 2  # 32 samples wait for the next block
    assert not np.frombuffer(out, "<i2").any()


def test_the_speaker_holds_without_losing_audio_and_flushes_on_a_cut():
    speaker = SpeakerBuffer(max_blocks=8)
    speaker.push(b"\x01\x00" * 100)
    out = bytearray(400)
    speaker.hold()
    assert speaker.fill(out, 0.0, 0.0) == 0 and out == bytearray(400) and speaker.queued_s > 0
    speaker.release()
    assert speaker.fill(out, 0.0, 0.0) == 200 and speaker.queued_s == 0
    speaker.push(b"\x01\x00" * 100)
    speaker.flush()
    assert speaker.fill(out, 0.0, 0.0) == 0 and not speaker.busy


def test_the_full_duplex_token_pairs_like_the_plain_one():
    token = handshake.token(1234)
    assert handshake.parse(handshake.full_duplex(token)) == handshake.parse(token) == 1234
    assert handshake.is_full_duplex(handshake.full_duplex(token)) and not handshake.is_full_duplex(token)
    assert handshake.could_be_token(b"S2S2"[:3]) and not handshake.could_be_token(b"S2S3")


def test_control_frames_and_a_notice_are_read_whole_however_they_arrive():
    reader = handshake.MessageReader()
    stream = handshake.control(handshake.HOLD) + handshake.control(handshake.FLUSH) + handshake.notice("bye now")
    got = [m for k in range(0, len(stream), 3) for m in reader.feed(stream[k:k + 3])]  # 3 bytes at a time
    assert got == [("control", handshake.HOLD), ("control", handshake.FLUSH), ("notice", "bye now")]
    assert reader.feed(b"RIFF\x00\x00\x00\x00") == [("garbled", b"RIFF".hex())]
    assert reader.feed(handshake.control(handshake.RELEASE)) == [("control", handshake.RELEASE)]  # aligned again


def test_the_client_obeys_hold_release_and_flush_and_keeps_the_close_reason():
    server, client = socket.socketpair()
    client.settimeout(0.05)
    speaker, stop, notices = SpeakerBuffer(max_blocks=0), threading.Event(), []
    speaker.push(b"\x01\x00" * 100)
    reader = threading.Thread(target=obey_server, args=(client, speaker, stop, notices))
    reader.start()

    def after(code, check):
        server.sendall(handshake.control(code))
        deadline = time.monotonic() + 2
        while not check() and time.monotonic() < deadline:
            time.sleep(0.01)
        return check()

    assert after(handshake.HOLD, lambda: speaker.held)
    out = bytearray(400)
    assert speaker.fill(out, 0.0, 0.0) == 0 and speaker.queued_s > 0  # held: silence, nothing lost
    assert after(handshake.RELEASE, lambda: not speaker.held)
    assert after(handshake.FLUSH, lambda: speaker._flush)
    assert speaker.fill(out, 0.0, 0.0) == 0 and not speaker.busy  # the cut reply is dropped
    server.sendall(handshake.notice("the server is shutting down"))
    server.close()
    reader.join(2)
    assert not reader.is_alive() and notices == ["the server is shutting down"]


def session_with_reply_socket(full_duplex: bool, audio_connection: bool = False):
    server_in, client_in = socket.socketpair()
    server_out, client_out = socket.socketpair()
    session = ClientSession(server_in, "127.0.0.1:1", queue.Queue(), TurnMetrics(None), 1024, 60.0,
                            on_close=lambda s: None, barge_in=True)
    session.attach_reply_connection(server_out, full_duplex)
    return (session, client_out, client_in) if audio_connection else (session, client_out)


def test_a_full_duplex_client_is_told_to_hold_release_and_flush_and_the_hold_freezes_what_was_heard():
    session, client_out, client_in = session_with_reply_socket(full_duplex=True, audio_connection=True)
    turn = Turn(session.conversation, speech_end=time.monotonic())
    session.conversation.reply_started(turn)
    for i in range(100):  # 3.2 s of reply
        session.send(AudioOut(bytes(1024), turn, text=" ".join(["word"] * 40) if i == 0 else ""))
    receive_for(client_out, 0.5)
    reader = handshake.MessageReader()
    client_in.settimeout(1.0)

    def frames():
        return reader.feed(client_in.recv(64))

    session.conversation.pause_reply()
    assert frames() == [("control", handshake.HOLD)]
    time.sleep(0.1)  # a block the writer had on its way when the hold came reaches the client too (and is held)
    heard = session.heard(turn)
    time.sleep(0.3)
    assert session.heard(turn) == heard  # the client plays nothing while it holds
    session.conversation.resume_reply()
    assert frames() == [("control", handshake.RELEASE)]
    time.sleep(0.3)
    assert len(session.heard(turn)) > len(heard)  # it plays on from where it stopped
    session.conversation.pause_reply()
    receive_for(client_out, 0.2)  # what was sent before the hold
    session.conversation.interrupt()
    got = frames()
    while got[-1:] != [("control", handshake.FLUSH)]:
        got += frames()
    assert got == [("control", handshake.HOLD), ("control", handshake.FLUSH)]
    assert turn.interrupted and not receive_for(client_out, 0.3)
    session.close("test over")


def receive_for(sock, seconds):
    got, deadline = [], time.monotonic() + seconds
    sock.settimeout(0.05)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        got.append((time.monotonic(), len(data)))
    return got


def test_replies_are_sent_at_the_pace_they_play_and_a_cut_stops_them_within_the_lead():
    session, client = session_with_reply_socket(full_duplex=True)
    assert session.conversation.barge_in
    turn = Turn(session.conversation, speech_end=time.monotonic())
    session.conversation.reply_started(turn)
    block = bytes(1024)  # 32 ms
    for i in range(100):  # 3.2 s of reply, all at once as a fast TTS gives it
        session.send(AudioOut(block, turn, text="Once upon a time there was a knight." if i == 0 else ""))
    got = receive_for(client, 1.0)
    sent_s = sum(n for _, n in got) / 32000
    assert 1.0 <= sent_s <= 1.0 + PLAYBACK_LEAD_S + 0.1, sent_s  # real time, plus the lead
    heard = session.heard(turn)
    # ~1 s of the sentence's 3.2 s has played: a third of its words, though its audio went out only as it played
    # (spread over just the audio sent, the words ran ahead: 7 of 8 were counted as heard)
    assert 1 <= len(heard.split()) <= 4, heard
    session.conversation.pause_reply()
    held = receive_for(client, 0.4)
    session.conversation.interrupt()
    after = receive_for(client, 0.4)
    assert sum(n for _, n in held) / 32000 <= PLAYBACK_LEAD_S + 0.05 and not after
    assert turn.interrupted and turn.heard == heard or turn.heard.startswith(heard)
    session.close("test over")


def test_a_plain_client_is_half_duplex():
    session, client = session_with_reply_socket(full_duplex=False)
    assert not session.conversation.barge_in and not session.conversation.paced_output
    session.close("test over")
