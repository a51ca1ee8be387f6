"""The prompt a conversation has had read stays valid across turns (LLM/chat.py, LLM/llama_cpp_states.py).

A fake llama.cpp model counts the "tokens" (words) it must read before answering, reusing the longest
common prefix with what its context holds, as llama.cpp does; it can snapshot and restore its context.
"""
from __future__ import annotations

import threading
import time

from arguments_classes.parsing import parse_arguments
from LLM.chat import Chat
from utils.pipeline.messages import Conversation, Transcript, Turn


class PrefixLlama:
    """create_chat_completion(stream=True) that reads only the part of the prompt its context lacks."""

    def __init__(self) -> None:
        self.context: list[str] = []
        self.read: list[int] = []  # tokens read before each answer
        self.prompts: list[list[str]] = []

    @staticmethod
    def tokens(messages) -> list[str]:
        return [word for m in messages for word in [f"<{m['role']}>", *m["content"].split()]]

    def create_chat_completion(self, messages, stream, max_tokens=None, **kwargs):
        prompt = self.tokens(messages) + ["<assistant>"]
        common = 0
        for a, b in zip(self.context, prompt):
            if a != b:
                break
            common += 1
        self.read.append(len(prompt) - common)
        self.prompts.append(prompt)
        self.context = list(prompt)
        words = ["Answer", "to", *messages[-1]["content"].split()][: max_tokens or None]
        for i, word in enumerate(words):
            self.context.append(word)
            yield {"choices": [{"delta": {"content": word if i == 0 else " " + word}}]}

    def snapshot(self):
        return list(self.context)

    def restore(self, snap) -> bool:
        self.context = list(snap)
        return True


def handler_with(model, *flags):
    backend, config = parse_arguments(["--llm", "llama-cpp", "--init_chat_prompt", "Be brief.", *flags]).llm
    return backend.load_handler()(threading.Event(), None, None, setup_kwargs={"config": config, "model": model})


def ask(handler, conversation, text, tentative=False):
    turn = Turn(conversation, time.monotonic(), tentative=tentative)
    sentences = handler.process(Transcript(text, "en", turn))
    return turn, sentences


def say(handler, conversation, text):
    before = len(handler.model.read)
    turn, sentences = ask(handler, conversation, text)
    list(sentences)
    return handler.model.read[before]  # what it read before answering (a read-ahead may come after)


def test_the_history_is_append_only_and_trimmed_by_half_at_once():
    chat = Chat(4, "Be brief.", history_format="messages")
    starts, sizes = [], []
    for i in range(9):
        chat.append(f"q{i}", f"a{i}")
        starts.append(chat.exchanges[0][0]["content"])
        sizes.append(len(chat.exchanges))
    assert starts == ["q0", "q0", "q0", "q0", "q3", "q3", "q3", "q6", "q6"]
    assert sizes == [1, 2, 3, 4, 2, 3, 4, 2, 3]  # trimmed by half at turns 4 and 7 only
    assert chat.messages("next")[0] == {"role": "system", "content": "Be brief."}
    in_system = Chat(4, "Be brief.", history_format="system")
    for i in range(9):
        in_system.append(f"q{i}", f"a{i}")
    first = in_system.messages("next")[0]["content"]
    assert first.startswith("Be brief.\n\n") and first.endswith("User: q6\nAssistant: a6\nUser: q7\nAssistant: a7\nUser: q8\nAssistant: a8")


def test_every_turn_of_a_long_conversation_reads_only_its_question():
    model = PrefixLlama()
    handler = handler_with(model, "--chat_size", "4")
    conversation = Conversation()
    reads = [say(handler, conversation, f"what is the weather number {i}") for i in range(12)]
    # after the first turn, only each question's 6 words and its "<user>" and "<assistant>", even on the
    # turns after a trim (the trimmed history was read ahead, after the reply)
    assert max(reads[1:]) <= 8, reads
    assert model.prompts[-1].count("<user>") <= 4 + 1  # the history stays within chat_size


def test_two_conversations_taking_turns_each_keep_their_prompt():
    model = PrefixLlama()
    handler = handler_with(model, "--chat_size", "8")
    alice, bob = Conversation(), Conversation()
    reads = []
    for i in range(5):
        reads.append(say(handler, alice, f"alice question number {i}"))
        reads.append(say(handler, bob, f"bob question number {i}"))
    assert all(r <= 4 + 3 for r in reads[2:]), reads  # without the snapshots each turn re-reads the other's history
    assert "alice" not in " ".join(model.prompts[-1])  # and nothing of one reaches the other


def test_a_withdrawn_speculative_turn_leaves_no_trace():
    model = PrefixLlama()
    handler = handler_with(model, "--chat_size", "4")
    conversation = Conversation()
    say(handler, conversation, "hello there")
    turn, sentences = ask(handler, conversation, "what is the", tentative=True)
    list(sentences)
    turn.withdraw()  # the user went on speaking
    before = len(model.prompts)
    say(handler, conversation, "what is the capital of France")
    assert "the capital" not in str(handler.chat_of(conversation).exchanges[0])
    last_prompt = " ".join(model.prompts[before])  # the one it answered from
    assert last_prompt.count("what is the") == 1  # the withdrawn question is not in the prompt
    assert [m["content"] for m, _ in handler.chat_of(conversation).exchanges] == [
        "hello there", "what is the capital of France"]


def test_the_handler_without_a_snapshotting_model_still_answers():
    from tests.fakes import EchoLLM

    model = EchoLLM()
    handler = handler_with(model, "--chat_size", "2")
    conversation = Conversation()
    for i in range(4):
        turn, sentences = ask(handler, conversation, f"question {i}")
        assert [s.text for s in sentences if s.text]
    assert handler.states is None


def test_a_turn_confirmed_after_its_reply_was_written_is_read_ahead_when_the_model_is_free():
    # The end of turn may wait for more silence (the end-of-turn model was unsure) while the reply is already written:
    # the history is read ahead once the turn is confirmed, between items, so the next question reads only itself.
    model = PrefixLlama()
    handler = handler_with(model, "--chat_size", "4")
    conversation = Conversation()
    say(handler, conversation, "hello there")
    turn, sentences = ask(handler, conversation, "what do bees make", tentative=True)
    list(sentences)
    reads = len(model.read)
    handler.idle()
    assert len(model.read) == reads  # not confirmed yet: nothing to read
    turn.confirm()
    handler.idle()
    assert len(model.read) == reads + 1  # the read-ahead
    assert say(handler, conversation, "and what do ants make") <= 7  # its words, "<user>" and "<assistant>"


class ThreadRecordingLlama(PrefixLlama):
    """Records the thread each prompt is read on (llama.cpp's OpenMP keeps a worker pool per such thread)."""

    def __init__(self, fail: Exception | None = None) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []
        self.fail = fail

    def create_chat_completion(self, messages, stream, max_tokens=None, **kwargs):
        self.threads.append(threading.current_thread())
        if self.fail is not None:
            raise self.fail
        yield from super().create_chat_completion(messages, stream, max_tokens, **kwargs)


def test_the_warmup_reads_on_a_thread_that_ends_not_on_the_one_that_builds_the_handler():
    model = ThreadRecordingLlama()
    handler_with(model)
    (warmup_thread,) = model.threads
    assert warmup_thread is not threading.current_thread() and not warmup_thread.is_alive()


def test_a_warmup_that_fails_fails_the_set_up_with_its_own_error():
    import pytest

    with pytest.raises(RuntimeError, match="model is broken"):
        handler_with(ThreadRecordingLlama(fail=RuntimeError("model is broken")))
