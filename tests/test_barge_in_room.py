"""Barge-in on real PortAudio devices, in a PulseAudio room whose microphone hears the assistant's own voice: local
mode, and the socket server with listen_and_play.py --full_duplex on the room's devices (the server holds and drops
the client's reply audio with control frames, connections/handshake.py). benchmarks/barge_in.py measures the same at
length. Needs the echo canceller (livekit, in the dev install)."""
from __future__ import annotations

import json

import pytest

from benchmarks.barge_in import STORY, Room, over_reply, quiet_reply
from tests.pulse_room import missing_tools
from tests.transcribe import word_recall

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["local", "socket"])
def room(request, tmp_path_factory):
    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install pulseaudio pulseaudio-utils libportaudio2)")
    pytest.importorskip("livekit.rtc", reason="the echo canceller: pip install livekit (in requirements-dev.txt)")
    room = Room(tmp_path_factory.mktemp(f"barge_in_{request.param}"), [], socket=request.param == "socket")
    yield room
    assert room.close() == 0
    if room.client is not None:  # stopped as by Ctrl-C: it closed its devices and said how they fared
        assert room.client.returncode == 0
        assert any("over/underruns" in line for line in room.client_log()), room.client_log()[-5:]


def test_talking_over_the_reply_stops_it_and_asks_the_next_question(room):
    asked = len(room.llm.requests)
    result = over_reply(room, "Wait, what is the capital of Spain?")
    assert any("full duplex" in line for line in room.server.stderr)
    assert result["cut"], result
    # the voice stopped while the user spoke (how fast: benchmarks/barge_in.py; a timed assertion would flake)
    assert result["stop_ms"] is not None and result["stop_ms"] < 1000, result
    question, = result["new_users"][-1:]  # the cut-in became the next question, whole
    assert word_recall("Wait, what is the capital of Spain?", question) >= 0.6, result
    # the question was answered with the story as far as it was heard in the history, marked as interrupted
    requests = [json.dumps(r["messages"]) for r in room.llm.requests[asked:]]
    answer_request = next(r for r in requests if "spain" in r.lower())
    assert "[interrupted by the user]" in answer_request
    kept = answer_request.split("Assistant: ")[-1].split("[interrupted")[0].strip()
    story = "".join(STORY)
    # what was heard, and no more: nothing at all when a leftover of the reply's own echo at its very start held it
    # before its first word was heard (then the user's speech joined that sound: 1 run in 5 in the room)
    assert story.startswith(kept) and len(kept) < len(story) / 2, kept
    if room.client is not None:  # the client dropped what it held: no echo of it came back as a turn of its own
        assert len(result["new_users"]) == 2, result


def test_a_cough_does_not_stop_the_reply(room):
    result = over_reply(room, "cough")
    assert not result["cut"] and len(result["new_users"]) == 1, result  # only the question that asked for the story
    assert result["played_on"], result


def test_a_reply_heard_out_does_not_interrupt_itself(room):
    result = quiet_reply(room)
    assert not result["cut"] and len(result["new_users"]) == 1, result
