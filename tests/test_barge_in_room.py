"""Barge-in on real PortAudio devices: local mode in a PulseAudio room whose microphone hears the assistant's own
voice (benchmarks/barge_in.py measures the same at length). Needs the echo canceller (livekit, in the dev install)."""
from __future__ import annotations

import json

import pytest

from benchmarks.barge_in import STORY, Room, over_reply, quiet_reply
from tests.pulse_room import missing_tools
from tests.transcribe import word_recall

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (Debian: apt-get install pulseaudio pulseaudio-utils libportaudio2)")
    pytest.importorskip("livekit.rtc", reason="the echo canceller: pip install livekit (in requirements-dev.txt)")
    room = Room(tmp_path_factory.mktemp("barge_in"), [])
    yield room
    assert room.close() == 0


def test_talking_over_the_reply_stops_it_and_asks_the_next_question(room):
    asked = len(room.llm.requests)
    result = over_reply(room, "Wait, what is the capital of Spain?")
    assert any("full duplex" in line for line in room.server.stderr)
    assert_cut_and_asked(room, result, "Wait, what is the capital of Spain?", asked)


def assert_cut_and_asked(room, result: dict, said: str, asked: int) -> None:
    """The reply stopped while the user spoke, the cut-in was the next question, and it was answered with the story
    kept in the history as far as it was heard, marked as interrupted."""
    assert result["cut"], result
    # the voice stopped while the user spoke (how fast: benchmarks/barge_in.py; a timed assertion would flake)
    assert result["stop_ms"] is not None and result["stop_ms"] < 1000, result
    question, = result["new_users"][-1:]  # the cut-in became the next question, whole
    assert word_recall(said, question) >= 0.6, result
    # the question was answered with the story as far as it was heard in the history, marked as interrupted
    requests = [json.dumps(r["messages"]) for r in room.llm.requests[asked:]]
    answer_request = next(r for r in requests if said.split()[-1].strip("?.").lower() in r.lower())
    assert "[interrupted by the user]" in answer_request
    kept = answer_request.split("Assistant: ")[-1].split(" [interrupted")[0]
    story = "".join(STORY)
    assert kept and story.startswith(kept) and len(kept) < len(story) / 2, kept


def test_a_cough_does_not_stop_the_reply(room):
    result = over_reply(room, "cough")
    assert not result["cut"] and len(result["new_users"]) == 1, result  # only the question that asked for the story
    assert result["played_on"], result


def test_a_reply_heard_out_does_not_interrupt_itself(room):
    result = quiet_reply(room)
    assert not result["cut"] and len(result["new_users"]) == 1, result
