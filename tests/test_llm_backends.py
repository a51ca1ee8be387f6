"""LLM backends transformers, mlx-lm and open_api, and answering in the user's language.

Fast tests run a tiny real LlamaForCausalLM whose weights make greedy decoding say "Hello world. How are
you?" (tests/tiny_llama.py) and an OpenAI-compatible server on loopback that records what it is sent
(tests/openai_fake.py). Integration tests run the bundled SmolLM2 GGUF through transformers and mlx-lm,
llama.cpp's own OpenAI-compatible server, and the whole pipeline process with a spoken question.
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from dataclasses import replace

import pytest

from arguments_classes.parsing import parse_arguments
from benchmarks.server import http_service
from LLM.answer_language import answer_language_instruction, question_with_instruction
from tests.conftest import ServerProcess, free_port
from tests.openai_fake import RecordingServer
from tests.tiny_llama import REPLY, SENTENCES, build
from utils.pipeline.messages import END, Conversation, Transcript, Turn


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return str(build(tmp_path_factory.mktemp("tiny_llama")))


def make_handler(backend_name, *flags, model=None, gen_kwargs=None, queue_in=None, queue_out=None, on_turn_dropped=None):
    backend, config = parse_arguments(["--llm", backend_name, *flags]).llm
    if gen_kwargs:
        config = replace(config, gen_kwargs={**config.gen_kwargs, **gen_kwargs})
    return backend.load_handler()(threading.Event(), queue_in, queue_out, setup_kwargs={"config": config, "model": model},
                                  on_turn_dropped=on_turn_dropped)


def transcript(text, language="en", conversation=None):
    return Transcript(text, language, Turn(conversation or Conversation(), time.monotonic()))


def reply(handler, text, language="en", conversation=None):
    return [(s.text, s.last) for s in handler.process(transcript(text, language, conversation))]


def generation_threads():
    return [t for t in threading.enumerate() if t.name.endswith("-generate") and t.is_alive()]


class Gate:
    """A logits processor that holds generation once the reply has reached `token_id` (as the last token),
    until `release` is set. `timed_out` tells whether it had to give up waiting."""

    def __init__(self, token_id: int, wait_s: float = 30.0) -> None:
        self.token_id, self.wait_s = token_id, wait_s
        self.release = threading.Event()
        self.timed_out = False

    def __call__(self, input_ids, scores):
        if int(input_ids[0, -1]) == self.token_id:
            self.timed_out = not self.release.wait(self.wait_s)
        return scores


def token_id(tiny_model_dir, token):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir).convert_tokens_to_ids(token)


# --- the user's language ------------------------------------------------------------------------------


def test_the_answer_language_is_asked_for_unless_english():
    assert answer_language_instruction(None) is None
    assert answer_language_instruction("en") is None
    assert answer_language_instruction("en-US") is None
    assert answer_language_instruction("fr") == "Answer in French."
    assert answer_language_instruction("zh") == "Answer in Chinese."
    assert answer_language_instruction("xx") == "Answer in xx."


def test_a_question_in_another_language_than_the_history_drops_that_history():
    """A small model goes on in the history's language: the reply's language is the question's."""
    from LLM.chat import Chat

    chat = Chat(4, "Be brief.")
    chat.append("Hello", "Hi!", "en")
    chat.append("¿Cuál es la capital de España? (Answer in Spanish.)", "Madrid.", "es")
    chat.append("And France?", "Paris.", "en")
    chat.keep_language("en")
    assert [u["content"] for u, _ in chat.exchanges] == ["Hello", "And France?"]
    chat.keep_language(None)  # unknown: nothing to go by
    assert len(chat.exchanges) == 2


class SilentModel:
    """create_chat_completion that writes nothing (a reply of only function calls, or an empty one)."""

    def create_chat_completion(self, messages, stream, **kwargs):
        return iter([])


def test_the_turn_says_when_the_model_has_read_its_prompt():
    # the end-of-turn model waits for this mark (VAD/vad_handler.py): it must come at the first piece, and
    # also when no piece comes, or a turn would wait for silence alone
    from tests.fakes import EchoLLM

    for model, first_piece in ((EchoLLM(), True), (SilentModel(), False)):
        handler = make_handler("llama-cpp", model=model)
        item = transcript("What is the capital of France?")
        marked_before_first_sentence = None
        for sentence in handler.process(item):
            if marked_before_first_sentence is None:
                marked_before_first_sentence = "prompt_read" in item.turn.marks
        assert "prompt_read" in item.turn.marks
        assert marked_before_first_sentence is True
        assert ("first_token" in item.turn.marks) is first_piece


def test_the_instruction_goes_with_the_question_not_the_system_prompt():
    """The prompt's start stays the same from turn to turn, so a cached prefix stays valid."""
    assert question_with_instruction("Salut", "Answer in French.") == "Salut (Answer in French.)"
    assert question_with_instruction("Hi", None) == "Hi"


# --- transformers, on a tiny scripted model ---------------------------------------------------------


def test_transformers_streams_the_reply_as_sentences_and_keeps_the_history(tiny_model):
    handler = make_handler("transformers", "--lm_model_name", tiny_model)
    conversation = Conversation()
    assert reply(handler, "Hi", conversation=conversation) == [(SENTENCES[0], False), (SENTENCES[1], True)]
    history = handler.messages_for(transcript("Again", conversation=conversation))
    assert f"User: Hi\nAssistant: {REPLY}" in history[0]["content"]  # past exchanges in the system prompt
    assert history[1:] == [{"role": "user", "content": "Again"}]
    assert generation_threads() == []


def test_transformers_hands_on_a_sentence_while_generation_still_runs(tiny_model):
    gate = Gate(token_id(tiny_model, "?"))  # holds generate() just before its last token
    handler = make_handler("transformers", "--lm_model_name", tiny_model, gen_kwargs={"logits_processor": [gate]})
    sentences = handler.process(transcript("Hi"))
    try:
        first = next(sentences)  # a handler that waited for the whole reply would block here until the gate gave up
        assert not gate.timed_out
    finally:
        gate.release.set()
    assert (first.text, first.last) == (SENTENCES[0], False)
    assert [(s.text, s.last) for s in sentences] == [(SENTENCES[1], True)]


def test_transformers_generation_options_reach_generate(tiny_model):
    handler = make_handler("transformers", "--lm_model_name", tiny_model, "--lm_gen_max_tokens", "3")
    # three tokens: Hello, world, . (the first phrase goes out with its full stop; the reply's end follows, empty)
    assert reply(handler, "Hi") == [("Hello world.", False), ("", True)]


def test_transformers_option_names_are_mapped_to_generate():
    from LLM.transformers_handler import generate_kwargs

    assert generate_kwargs({"max_tokens": 5, "temperature": 0.0}) == {"max_new_tokens": 5, "do_sample": False}
    assert generate_kwargs({"max_tokens": 5, "temperature": 0.7, "top_k": 3}) == {
        "max_new_tokens": 5, "do_sample": True, "temperature": 0.7, "top_k": 3}


def test_transformers_cancelled_turn_stops_generation(tiny_model):
    gate = Gate(token_id(tiny_model, "?"))
    handler = make_handler("transformers", "--lm_model_name", tiny_model, gen_kwargs={"logits_processor": [gate]})
    conversation = Conversation()
    sentences = handler.process(transcript("Hi", conversation=conversation))
    try:
        assert next(sentences).text == SENTENCES[0]
        conversation.end()  # the client left mid-reply
    finally:
        gate.release.set()
    assert list(sentences) == []
    assert generation_threads() == []
    history = handler.messages_for(transcript("Again", conversation=conversation))
    assert [m["role"] for m in history] == ["system", "user"]  # a reply nobody heard is not history


def test_transformers_error_in_generation_reaches_the_turn_instead_of_hanging(tiny_model):
    class Explode:
        def __init__(self, token):
            self.token = token

        def __call__(self, input_ids, scores):
            if int(input_ids[0, -1]) == self.token:
                raise RuntimeError("boom in generate")
            return scores

    handler = make_handler("transformers", "--lm_model_name", tiny_model,
                           gen_kwargs={"logits_processor": [Explode(token_id(tiny_model, "?"))]})
    outcome = []

    def run():
        try:
            outcome.append(list(handler.process(transcript("Hi"))))
        except RuntimeError as e:
            outcome.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the reply hung after generate() failed"
    assert isinstance(outcome[0], RuntimeError) and "boom" in str(outcome[0])


def test_transformers_handler_loop_passes_sentences_then_END(tiny_model):
    queue_in, queue_out = queue.Queue(), queue.Queue()
    handler = make_handler("transformers", "--lm_model_name", tiny_model, queue_in=queue_in, queue_out=queue_out)
    worker = threading.Thread(target=handler.run, daemon=True)
    worker.start()
    queue_in.put(transcript("Hi"))
    queue_in.put(END)
    worker.join(60)
    assert not worker.is_alive()
    out = [queue_out.get_nowait() for _ in range(queue_out.qsize())]
    assert [(s.text, s.last) for s in out[:-1]] == [(SENTENCES[0], False), (SENTENCES[1], True)]
    assert out[-1] is END


def test_transformers_missing_model_is_one_clear_error(tmp_path):
    from utils.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot load language model"):
        make_handler("transformers", "--lm_model_name", str(tmp_path / "nothing-here"))
    with pytest.raises(ConfigError, match="lm_torch_dtype"):
        make_handler("transformers", "--lm_model_name", str(tmp_path), "--lm_torch_dtype", "float8")


# --- converted GGUF cache ----------------------------------------------------------------------------


def test_the_cache_key_follows_the_gguf_file(tmp_path):
    from LLM.gguf_cache import cache_dir_for

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    first = cache_dir_for(str(model), tmp_path / "cache")
    assert cache_dir_for(str(model), tmp_path / "cache") == first
    os.utime(model, ns=(0, 123_000_000_000))
    assert cache_dir_for(str(model), tmp_path / "cache") != first
    assert first.parent == tmp_path / "cache" and first.name.startswith("m-")


# --- mlx-lm (mlx[cpu] on Linux) ----------------------------------------------------------------------


def test_mlx_streams_the_reply_as_sentences(tiny_model):
    handler = make_handler("mlx-lm", "--lm_model_name", tiny_model)
    assert reply(handler, "Hi") == [(SENTENCES[0], False), (SENTENCES[1], True)]
    handler = make_handler("mlx-lm", "--lm_model_name", tiny_model, "--lm_gen_max_tokens", "3")
    assert reply(handler, "Hi") == [("Hello world.", False), ("", True)]


def test_mlx_reads_rope_settings_that_transformers_5_saves(tmp_path):
    import json

    from LLM.mlx_handler import transformers5_overrides

    (tmp_path / "config.json").write_text(json.dumps({"rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}}))
    assert transformers5_overrides(str(tmp_path)) == {"rope_theta": 100000.0}
    (tmp_path / "config.json").write_text(json.dumps({"rope_theta": 5.0, "rope_parameters": {"rope_theta": 5.0}}))
    assert transformers5_overrides(str(tmp_path)) == {}
    assert transformers5_overrides(str(tmp_path / "absent")) == {}


# --- open_api, against a server on loopback that records each request -------------------------------

PIECES = ["Hi there", ". How can", " I help?"]


def test_open_api_sends_the_system_prompt_the_history_and_the_options():
    with RecordingServer(PIECES) as server:
        handler = make_handler("open_api", "--open_api_base_url", server.base_url, "--open_api_model_name", "m1",
                               "--init_chat_prompt", "Be brief.", "--lm_gen_max_tokens", "33",
                               "--history_format", "messages")
        conversation = Conversation()
        assert reply(handler, "Hello", conversation=conversation) == [("Hi there.", False), ("How can I help?", True)]
        reply(handler, "Who are you?", conversation=conversation)
    first, second = server.requests
    assert first["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert second["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there. How can I help?"},
        {"role": "user", "content": "Who are you?"},
    ]
    assert (second["model"], second["stream"], second["max_tokens"], second["temperature"]) == ("m1", True, 33, 0.0)


def test_open_api_asks_for_the_users_language_and_a_new_client_starts_afresh():
    with RecordingServer(PIECES) as server:
        handler = make_handler("open_api", "--open_api_base_url", server.base_url, "--init_chat_prompt", "Be brief.")
        reply(handler, "Hello")
        reply(handler, "Bonjour, qui es-tu ?", language="fr")  # another conversation
    assert server.requests[1]["messages"] == [  # the system prompt as always: the server's prefix cache holds
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Bonjour, qui es-tu ? (Answer in French.)"}]
    assert server.requests[0]["model"] == "fake-model"  # no model name given: the first the server lists


def test_open_api_server_down_drops_the_turn_with_one_line_and_the_next_turn_works(caplog):
    port = free_port()
    dropped, queue_in, queue_out = queue.Queue(), queue.Queue(), queue.Queue()
    with caplog.at_level(logging.WARNING):
        handler = make_handler("open_api", "--open_api_base_url", f"http://127.0.0.1:{port}/v1", "--open_api_model_name", "m",
                               queue_in=queue_in, queue_out=queue_out, on_turn_dropped=dropped.put)
        worker = threading.Thread(target=handler.run, daemon=True)
        worker.start()
        lost = transcript("Hello")
        queue_in.put(lost)
        assert dropped.get(timeout=30) is lost
    assert worker.is_alive()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "cannot connect" in errors[0].getMessage() and "dropping this turn" in errors[0].getMessage()
    assert queue_out.empty()

    with RecordingServer(PIECES, port=port):  # the server comes up: the next turn is answered
        queue_in.put(transcript("Hello again"))
        answered = [queue_out.get(timeout=30) for _ in range(2)]
        queue_in.put(END)
        worker.join(30)
    assert [s.text for s in answered] == ["Hi there.", "How can I help?"]
    assert queue_out.get(timeout=5) is END


def test_open_api_error_status_drops_the_turn(caplog):
    with RecordingServer(PIECES) as server:
        server.status = 500
        dropped = []
        handler = make_handler("open_api", "--open_api_base_url", server.base_url, "--open_api_model_name", "m",
                               on_turn_dropped=dropped.append)
        with caplog.at_level(logging.ERROR):
            assert reply(handler, "Hello") == []
    assert len(dropped) == 1
    assert any("answered 500" in r.getMessage() for r in caplog.records)


# --- integration: the bundled GGUF, llama.cpp's server, the whole pipeline ---------------------------


@pytest.fixture(scope="module")
def llama_cpp_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server on the bundled model, on a free loopback port."""
    from LLM.bundled_model import bundled_model_path

    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", bundled_model_path(), "--host", "127.0.0.1",
               "--port", str(port), "--n_threads", "2", "--n_ctx", "2048", "--verbose", "False"]
    with http_service(command, f"{base_url}/models", tmp_path_factory.mktemp("llama_cpp_server") / "server.log"):
        yield base_url


@pytest.mark.integration
def test_transformers_answers_with_the_bundled_gguf_and_reuses_its_conversion(monkeypatch):
    from LLM import gguf_cache
    from LLM.bundled_model import bundled_model_path

    handler = make_handler("transformers")
    assert "paris" in " ".join(text for text, _ in reply(handler, "What is the capital of France?")).lower()

    def no_second_conversion(*_):
        raise AssertionError("the GGUF was converted again")

    monkeypatch.setattr(gguf_cache, "_convert", no_second_conversion)
    cached = gguf_cache.converted_model_dir(bundled_model_path())
    assert (cached / "model.safetensors").is_file() and (cached / "tokenizer.json").is_file()


@pytest.mark.integration
def test_mlx_answers_with_the_bundled_gguf():
    handler = make_handler("mlx-lm")
    assert "paris" in " ".join(text for text, _ in reply(handler, "What is the capital of France?")).lower()


@pytest.mark.integration
def test_open_api_streams_from_llama_cpp_server(llama_cpp_server):
    handler = make_handler("open_api", "--open_api_base_url", llama_cpp_server)
    pieces = list(handler.stream(handler.messages_for(transcript("What is the capital of France?"))))
    assert len(pieces) > 3  # streamed, not one block
    assert "paris" in "".join(pieces).lower()
    sentences = reply(handler, "What is the capital of France?")
    assert sentences[-1][1] is True and "paris" in " ".join(t for t, _ in sentences).lower()


# Spoken questions ask about Germany: tiny.en often hears espeak's "of France" as "and friends".
def ask_the_pipeline(*flags):
    from listen_and_play import talk_with_file
    from tests.speech import espeak

    server = ServerProcess(*flags, ready_timeout=300)
    try:
        reply_audio, _ = talk_with_file("127.0.0.1", server.recv_port, server.send_port,
                                        espeak("What is the capital of Germany?"), silence_s=30, reply_idle_s=1.5, timeout_s=90)
        server.wait_for(lambda: server.lines("ASSISTANT:"), 30, "ASSISTANT line")
        return reply_audio, server.lines("ASSISTANT:")[-1], server.stderr
    finally:
        server.stop()


@pytest.mark.integration
def test_pipeline_with_transformers_answers_a_spoken_question():
    audio, said, log = ask_the_pipeline("--llm", "transformers")
    assert any("TransformersLanguageModelHandler ready" in line for line in log)
    assert audio.first_at is not None and len(audio.audio) / 2 / 16000 > 0.5
    assert "berlin" in said.lower(), said


@pytest.mark.integration
def test_pipeline_with_open_api_answers_a_spoken_question(llama_cpp_server):
    audio, said, log = ask_the_pipeline("--llm", "open_api", "--open_api_base_url", llama_cpp_server)
    assert any("OpenApiLanguageModelHandler ready" in line for line in log)
    assert audio.first_at is not None and len(audio.audio) / 2 / 16000 > 0.5
    assert "berlin" in said.lower(), said
