"""Barge-in through the socket server on real PortAudio devices: listen_and_play.py --full_duplex in the PulseAudio
room, its speaker heard by its own microphone. The server holds and flushes the client's reply audio (control frames,
connections/handshake.py); benchmarks/barge_in.py --socket measures the stop times at length."""
from __future__ import annotations

import pytest

from benchmarks.barge_in import Room, over_reply
from tests.pulse_room import missing_tools
from tests.test_barge_in_room import assert_cut_and_asked

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install pulseaudio pulseaudio-utils libportaudio2)")
    pytest.importorskip("livekit.rtc", reason="the echo canceller: pip install livekit (in requirements-dev.txt)")
    room = Room(tmp_path_factory.mktemp("barge_in_socket"), [], socket=True)
    yield room
    assert room.close() == 0


def test_talking_over_a_socket_client_s_reply_stops_it_and_asks_the_next_question(room):
    asked = len(room.llm.requests)
    result = over_reply(room, "Wait, what is the capital of Spain?")
    assert any("is full duplex" in line for line in room.server.stderr)
    assert_cut_and_asked(room, result, "Wait, what is the capital of Spain?", asked)
    # the reply's sound stopped once: no echo of its buffered tail came back as a turn of its own
    assert len(result["new_users"]) == 2, result


def test_a_cough_does_not_stop_a_socket_client_s_reply(room):
    result = over_reply(room, "cough")
    assert not result["cut"] and len(result["new_users"]) == 1, result
    assert result["played_on"], result
