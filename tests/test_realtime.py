"""The Realtime endpoint with the official `openai` SDK's Realtime client (nobody here wrote it), on the real server:
spoken turns, text items, cancel, barge-in, truncation, errors that leave the session open, and its security."""
from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from benchmarks.realtime_client import RealtimeTalker
from benchmarks.server import free_port
from tests.conftest import ServerProcess
from tests.openai_fake import RecordingServer
from tests.speech import espeak
from tests.transcribe import transcribe, word_recall

pytestmark = pytest.mark.integration

STORY = [f"{sentence} " for sentence in (
    "The brave knight rode out of the castle at dawn.", "He crossed the wide river on an old wooden bridge.",
    "In the forest he met a friendly green dragon.", "The dragon was sad because it had lost its golden bell.",
    "Together they searched the hills and the valleys.", "At last they found the bell under a tall oak tree.",
    "The dragon rang the bell and all the birds began to sing.", "Then the knight and the dragon went home as friends.",
)]
STORY_TEXT = "".join(STORY).strip()


def run(coro, timeout: float = 240.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def text_item(text: str) -> dict:
    return {"type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}


@pytest.fixture(scope="module")
def story_llm():
    """A language model that always tells the same long story, and records what it was asked."""
    with RecordingServer(STORY) as llm:
        yield llm


@pytest.fixture(scope="module")
def story_server(story_llm):
    srv = ServerProcess("--llm", "open_api", "--open_api_base_url", story_llm.base_url, "--max_sessions", "6",
                        "--max_sessions_per_host", "6")
    yield srv
    srv.stop()


def test_spoken_conversation_of_three_turns(server):
    """Audio in at 24 kHz, the input transcription, reply audio whose words are the reply transcript's."""
    questions = ["What is the capital of France?", "What color is the sky?", "How many legs does a dog have?"]

    async def talk():
        async with RealtimeTalker(server.realtime_port) as talk:
            await talk.wait_for("session.created")
            turns = []
            for question in questions:
                since = await talk.say(espeak(question))
                _, heard = await talk.wait_for("conversation.item.input_audio_transcription.completed", 60, since)
                _, done = await talk.wait_for("response.done", 90, since)
                _, said = await talk.wait_for("response.output_audio_transcript.done", 5, since)
                turns.append((heard.transcript, done, said.transcript, talk.reply_audio(done.response.id)))
                await asyncio.sleep(0.6)  # the last half second of the reply plays
            return turns

    turns = run(talk())
    for question, (heard, done, said, audio) in zip(questions, turns):
        assert word_recall(question, heard) >= 0.6, (question, heard)
        assert done.response.status == "completed"
        assert len(audio) / 24000 > 0.5 and said
        import soxr

        spoken = transcribe((soxr.resample(audio.astype(np.float32) / 32768, 24000, 16000) * 32767).astype("<i2"))
        assert word_recall(said, spoken) >= 0.5, (said, spoken)
    assert len(server.lines("USER:")) >= 3


def test_text_item_gets_a_spoken_reply_and_cancel_stops_the_audio(story_server, story_llm):
    async def talk():
        async with RealtimeTalker(story_server.realtime_port) as talk:
            await talk.send(text_item("Tell me a story about a brave knight."))
            await talk.send({"type": "response.create"})
            first, delta = await talk.wait_for("response.output_audio.delta", 60)
            await asyncio.sleep(1.0)
            await talk.send({"type": "response.cancel"})
            done_at, done = await talk.wait_for("response.done", 10, first)
            await asyncio.sleep(1.5)
            after = [e for t, e in talk.events if e.type == "response.output_audio.delta" and t > done_at + 0.05]
            return done, after, talk.reply_audio(delta.response_id)

    done, after, audio = run(talk())
    assert done.response.status == "cancelled"
    assert after == []  # nothing more once cancelled
    seconds = len(audio) / 24000
    assert 0.5 < seconds < 4.0, seconds  # paced: about what played in that second, not the whole story
    assert "knight" in json.dumps(story_llm.requests[-1]["messages"])


def test_barge_in_cuts_the_reply_and_the_history_keeps_what_was_heard(story_server, story_llm):
    async def talk():
        async with RealtimeTalker(story_server.realtime_port) as talk:
            await talk.send(text_item("Tell me a long story."))
            await talk.send({"type": "response.create"})
            first, _ = await talk.wait_for("response.output_audio.delta", 60)
            await asyncio.sleep(1.5)
            since = await talk.say(espeak("What is the capital of Italy?"))
            _, cut = await talk.wait_for("response.done", 30, first, where=lambda e: e.response.status == "cancelled")
            _, started = await talk.wait_for("input_audio_buffer.speech_started", 5, first)
            _, heard = await talk.wait_for("conversation.item.input_audio_transcription.completed", 60, since - 3)
            _, done = await talk.wait_for("response.done", 90, since, where=lambda e: e.response.id != cut.response.id)
            return cut, started, heard, done

    asked = len(story_llm.requests)
    cut, started, heard, done = run(talk())
    assert cut.response.status_details.reason == "turn_detected"
    assert word_recall("What is the capital of Italy?", heard.transcript) >= 0.6, heard.transcript  # nothing lost
    assert done.response.status == "completed"
    kept = cut.response.output[0].content[0].transcript
    assert 1 <= len(kept.split()) < len(STORY_TEXT.split()) / 2, kept
    assert STORY_TEXT.split()[: len(kept.split())] == kept.split()  # the story's start, as far as it played
    cut_in, = [r for r in story_llm.requests[asked:] if "italy" in json.dumps(r["messages"]).lower()]
    history = json.dumps(cut_in["messages"])  # the question that cut in was asked with...
    assert f"{kept} [interrupted by the user]" in history  # ...the reply as far as it was heard, marked
    assert STORY[3].strip() not in history


def test_truncate_cuts_the_history_to_the_audio_played(story_server, story_llm):
    async def talk():
        async with RealtimeTalker(story_server.realtime_port) as talk:
            await talk.send(text_item("Tell me a story."))
            await talk.send({"type": "response.create"})
            _, done = await talk.wait_for("response.done", 120)
            item_id = done.response.output[0].id
            await talk.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                             "audio_end_ms": 1500})
            _, truncated = await talk.wait_for("conversation.item.truncated", 10)
            await talk.send({"type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0,
                             "audio_end_ms": 10})
            _, error = await talk.wait_for("error", 10)
            await talk.send(text_item("And then?"))
            await talk.send({"type": "response.create"})
            await talk.wait_for("response.created", 30, where=lambda e: e.response.id != done.response.id)
            return truncated, error

    truncated, error = run(talk())
    assert truncated.audio_end_ms == 1500
    assert "item_nope" in error.error.message
    history = json.dumps(story_llm.requests[-1]["messages"])
    assert "[interrupted by the user]" in history
    kept = history.split("Assistant: ")[-1].split(" [interrupted")[0]
    assert 1 <= len(kept.split()) <= 8 and STORY_TEXT.split()[: len(kept.split())] == kept.split(), kept  # ~1.5 s


def test_four_sessions_at_once_each_with_its_own_history(story_server, story_llm):
    names = ["Alice", "Bruno", "Chiara", "Dmitri"]

    async def one(name):
        async with RealtimeTalker(story_server.realtime_port) as talk:
            for text in (f"My name is {name}.", "What is my name?"):
                since = time.monotonic()
                await talk.send(text_item(text))
                await talk.send({"type": "response.create"})
                await talk.wait_for("response.output_audio.delta", 60, since)
                await talk.send({"type": "response.cancel"})  # no need to hear the story out
                await talk.wait_for("response.done", 30, since)

    async def all_four():
        await asyncio.gather(*(one(name) for name in names))

    asked = len(story_llm.requests)
    run(all_four())
    second = [r for r in story_llm.requests[asked:] if "What is my name?" in json.dumps(r["messages"])]
    assert len(second) == 4
    for request in second:
        text = json.dumps(request["messages"])
        present = [name for name in names if f"My name is {name}" in text]
        assert len(present) == 1, present  # its own first message, and nobody else's


def test_bad_events_get_an_error_each_and_the_session_stays_open(story_server):
    bad = [
        "not json", json.dumps([1, 2]), json.dumps({"no": "type"}), json.dumps({"type": "made.up"}),
        json.dumps({"type": "input_audio_buffer.append", "audio": "%%%"}),
        json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"abc").decode()}),
        json.dumps({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 8000}}}}}),
        json.dumps({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}}}),
        json.dumps({"type": "session.update", "session": "fast"}),
        json.dumps({"type": "input_audio_buffer.commit"}),
        json.dumps({"type": "response.cancel"}),
        json.dumps({"type": "response.create"}),
        json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "system", "content": []}}),
    ]

    async def talk():
        async with RealtimeTalker(story_server.realtime_port) as talk:
            await talk.wait_for("session.created")
            for message in bad:
                await talk.conn._connection.send(message)  # raw: the SDK would refuse some of these itself
            for _ in range(50):
                if len(talk.of_type("error")) >= len(bad):
                    break
                await asyncio.sleep(0.1)
            errors = [e.error.message for e in talk.of_type("error")]
            await talk.send(text_item("Still there?"))
            await talk.send({"type": "response.create"})
            _, created = await talk.wait_for("response.created", 30)
            await talk.send({"type": "response.cancel"})
            return errors

    errors = run(talk())
    assert len(errors) == len(bad), errors
    assert all(message and len(message.splitlines()) == 1 for message in errors)
    text = " | ".join(errors)
    for expected in ("not a JSON event", "made.up", "base64", "whole 16-bit samples", "8000", "audio/pcmu",
                     "no response is in progress", "nothing to respond to", "system"):
        assert expected in text, expected


WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def test_a_function_call_round_trips(story_server, story_llm):
    story_llm.tool_calls.append(("get_weather", '{"city": "Paris"}'))

    async def talk():
        async with RealtimeTalker(story_server.realtime_port) as talk:
            await talk.send({"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER_TOOL]}})
            await talk.wait_for("session.updated")
            asked = len(story_llm.requests)
            await talk.send(text_item("What is the weather in Paris?"))
            await talk.send({"type": "response.create"})
            _, call = await talk.wait_for("response.function_call_arguments.done", 60)
            _, first = await talk.wait_for("response.done", 30)
            await talk.send({"type": "conversation.item.create", "item": {
                "type": "function_call_output", "call_id": call.call_id, "output": '{"forecast": "sunny, 24 C"}'}})
            await talk.send({"type": "response.create"})
            _, second = await talk.wait_for("response.done", 60, where=lambda e: e.response.id != first.response.id)
            await talk.send({"type": "conversation.item.create", "item": {
                "type": "function_call_output", "call_id": call.call_id, "output": "again"}})
            _, error = await talk.wait_for("error", 10)
            return call, first, second, error, story_llm.requests[asked:]

    call, first, second, error, requests = run(talk())
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
    assert first.response.status == "completed" and [o.type for o in first.response.output] == ["function_call"]
    assert second.response.status == "completed" and second.response.output[0].type == "message"  # spoken
    assert "not a function call awaiting" in error.error.message  # its output was given already
    assert requests[0]["tools"] == [{"type": "function", "function": {k: WEATHER_TOOL[k] for k in
                                                                      ("name", "description", "parameters")}}]
    messages = requests[1]["messages"]  # the model goes on from its call and the client's output
    assert messages[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert messages[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": '{"forecast": "sunny, 24 C"}'}
    assert messages[-3] == {"role": "user", "content": "What is the weather in Paris?"}


def test_tools_with_a_backend_that_cannot_call_them_are_an_error(server):
    async def talk():
        async with RealtimeTalker(server.realtime_port) as talk:
            await talk.send({"type": "session.update", "session": {"type": "realtime", "tools": [WEATHER_TOOL]}})
            _, error = await talk.wait_for("error", 10)
            await talk.send({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}})
            _, updated = await talk.wait_for("session.updated", 10)
            return error, updated

    error, updated = run(talk())
    assert "tools are not supported" in error.error.message and "--llm open_api" in error.error.message
    assert updated.session.tools == []


# --- security ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_server():
    srv = ServerProcess("--realtime_host", "127.0.0.1", "--realtime_api_key", "s3cret", "--max_sessions", "2")
    yield srv
    srv.stop()


def connect(port: int, **kwargs):
    from websockets.sync.client import connect as ws_connect

    return ws_connect(f"ws://127.0.0.1:{port}/v1/realtime", open_timeout=10, **kwargs)


def status_of(port: int, **kwargs) -> int:
    from websockets.exceptions import InvalidStatus

    try:
        with connect(port, **kwargs) as ws:
            json.loads(ws.recv(10))
            return 101
    except InvalidStatus as e:
        return e.response.status_code


def test_the_key_is_required_as_a_header_or_the_browser_subprotocol(keyed_server):
    port = keyed_server.realtime_port
    assert status_of(port) == 401
    assert status_of(port, additional_headers={"Authorization": "Bearer wrong"}) == 401
    assert status_of(port, additional_headers={"Authorization": "Bearer s3cret"}) == 101
    assert status_of(port, subprotocols=["realtime", "openai-insecure-api-key.s3cret"]) == 101
    assert status_of(port, subprotocols=["realtime", "openai-insecure-api-key.nope"]) == 401


def test_another_sites_page_cannot_connect(keyed_server):
    port = keyed_server.realtime_port
    key = {"Authorization": "Bearer s3cret"}
    assert status_of(port, origin="http://evil.example", additional_headers=key) == 403
    assert status_of(port, origin=f"http://127.0.0.1:{port}", additional_headers=key) == 101


def test_oversized_messages_and_floods_are_refused(keyed_server):
    from websockets.exceptions import ConnectionClosed

    key = {"Authorization": "Bearer s3cret"}
    with connect(keyed_server.realtime_port, additional_headers=key) as ws:
        ws.recv(10)
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "A" * (2 << 20)}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(10)
        assert closed.value.rcvd.code == 1009  # message too big
    with connect(keyed_server.realtime_port, additional_headers=key) as ws:
        ws.recv(10)
        for _ in range(1000):
            ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        codes = set()
        try:
            while "rate_limit_exceeded" not in codes:
                event = json.loads(ws.recv(10))
                if event["type"] == "error":
                    codes.add(event["error"]["code"])
        except TimeoutError:
            pass
        assert "rate_limit_exceeded" in codes


def test_over_the_session_limit_the_socket_closes_with_1008_and_an_error(keyed_server):
    from websockets.exceptions import ConnectionClosed

    key = {"Authorization": "Bearer s3cret"}
    silence = json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(1920)).decode()})
    with connect(keyed_server.realtime_port, additional_headers=key) as a, \
            connect(keyed_server.realtime_port, additional_headers=key) as b:
        a.send(silence)
        b.send(silence)  # both stream: neither is idle enough to make room
        with connect(keyed_server.realtime_port, additional_headers=key) as c:
            event = json.loads(c.recv(10))
            with pytest.raises(ConnectionClosed) as closed:
                c.recv(10)
    assert event["type"] == "error" and "full" in event["error"]["message"]
    assert closed.value.rcvd.code == 1008


def test_the_page_is_served_and_nothing_else(keyed_server):
    base = f"http://127.0.0.1:{keyed_server.realtime_port}"
    with urllib.request.urlopen(base + "/", timeout=10) as page:
        assert page.headers["Content-Type"].startswith("text/html")
        assert b"<html" in page.read().lower()
    for path in ("/nope.html", "/../server.py", "/%2e%2e/server.py", "/.hidden"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path, timeout=10)
        assert e.value.code == 404, path


def test_network_address_without_a_key_is_refused_at_start():
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run([sys.executable, "s2s_pipeline.py", "--realtime_host", "0.0.0.0", "--recv_port",
                             str(free_port()), "--send_port", str(free_port())], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--realtime_api_key" in lines[0], result.stderr


def test_realtime_port_zero_turns_the_endpoint_off(tmp_path):
    srv = ServerProcess("--realtime_port", "0")
    try:
        assert not any("Realtime endpoint" in line for line in srv.stderr)
    finally:
        srv.stop()

