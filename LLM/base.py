"""What every language-model backend shares: a transcript in, the reply's sentences out as the model writes them,
and the conversation's history kept."""

from __future__ import annotations

import logging
from collections import deque
from typing import Iterable, Iterator

from LLM.answer_language import answer_language_instruction, question_with_instruction
from LLM.chat import Chat, remembered
from utils.console import print_assistant
from utils.pipeline.base_handler import BaseHandler
from utils.pipeline.messages import Conversation, Sentence, ToolCall, Transcript, Turn, cut_reply
from utils.sentences import SentenceSplitter, sentence_tokenizer

logger = logging.getLogger(__name__)

FIRST_PHRASE_WORDS = 1  # a reply may start with a clause ("Sure,"): the voice starts before its sentence ends


class BackendError(Exception):
    """The model could not answer for a reason the user should read as one line (a server that is down
    or refused the request): the turn is dropped and the handler keeps serving."""


def _call_message(text: str, calls: list[ToolCall]) -> dict:
    return {
        "role": "assistant",
        "content": text or None,
        "tool_calls": [
            {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ],
    }


class LLMHandler(BaseHandler):
    """Transcript in, Sentence out. Subclasses load a model in `setup` (calling `setup_chat`) and
    implement `stream(messages)`, a generator of text pieces.

    The user's language travels in `Transcript.language` (the STT's detection with `--language auto`);
    when it is not English, every backend is asked to answer in it.

    A backend with `supports_tools` takes `stream(messages, tools=[...])` (Chat Completions function tools, from a
    Realtime client's session) and may yield `ToolCall`s among its text pieces."""

    supports_tools = False

    def setup_chat(self, config) -> None:
        self.chat_config = config
        self.system_role = config.init_chat_role
        self._read_ahead: deque[tuple[Turn, Chat]] = deque()  # turns confirmed after their reply was written

    def chat_of(self, conversation: Conversation) -> Chat:
        """The conversation's history, kept in it (freed when it ends): clients never see each other's words."""
        return conversation.state(self, self._new_chat)

    def _new_chat(self) -> Chat:
        c = self.chat_config
        return Chat(c.chat_size, c.init_chat_prompt, c.init_chat_role, c.history_format)

    def stream(self, messages: list[dict], **options) -> Iterable[str | ToolCall]:
        raise NotImplementedError

    def warmup(self, **limit) -> None:
        """A two-token answer under the real system prompt, at start-up: kernels load, and a backend that
        keeps its prompt prefix (llama.cpp) keeps the system prompt's, so the first question pays for neither."""
        c = self.chat_config
        for _ in self.stream(Chat(0, c.init_chat_prompt, c.init_chat_role).messages("Hi"), **limit):
            pass
        sentence_tokenizer()  # loading nltk takes ~0.4 s: not on the first question

    def question_for(self, transcript: Transcript) -> str:
        """The user's message as the model sees it (and the history keeps it): the words, and the answer
        language when it must be said."""
        return question_with_instruction(transcript.text, answer_language_instruction(transcript.language))

    def messages_for(self, transcript: Transcript) -> list[dict]:
        """What the model sees: system prompt, history, the new question (with its answer language)."""
        return self.chat_of(transcript.turn.conversation).messages(self.question_for(transcript))

    def before_reply(self, conversation: Conversation) -> None:
        """Backend hook, on this thread before a reply is generated (llama.cpp: bring back its prompt)."""

    def sentence_out(self) -> None:
        """Backend hook, on this thread as a sentence goes to the voice, which starts computing on it now."""

    def after_reply(self, chat: Chat) -> None:
        """Backend hook, on this thread once a confirmed reply has been handed on and recorded: work for
        the next turn done while the user listens (llama.cpp: read a trimmed history ahead)."""

    def process(self, transcript: Transcript) -> Iterator[Sentence]:
        try:
            yield from self._reply(transcript)
        except BackendError as e:
            logger.error("%s: %s; dropping this turn", self.name, e)
            self.drop_turn(transcript)

    def _reply(self, transcript: Transcript) -> Iterator[Sentence]:
        turn = transcript.turn
        splitter = SentenceSplitter(first_phrase_words=FIRST_PHRASE_WORDS)
        pieces = []
        chat = self.chat_of(turn.conversation)
        chat.set_system_prompt(turn.conversation.instructions)
        chat.keep_language(transcript.language)
        if transcript.tool_outputs:  # the model goes on from its function calls: the question is the pending one
            question = chat.pending[0]["content"] if chat.pending else ""
            messages = chat.messages_after_calls(transcript.tool_outputs)
        else:
            question = self.question_for(transcript)
            messages = chat.messages(question)
        self.before_reply(turn.conversation)
        tools = turn.conversation.tools if self.supports_tools else []
        stream = self.stream(messages, tools=tools) if tools else self.stream(messages)
        calls: list[ToolCall] = []
        try:
            for piece in stream:
                turn.mark("prompt_read")  # it needs one core from here on, not both (VAD/vad_handler.py)
                if turn.cancelled:
                    return
                if isinstance(piece, ToolCall):
                    calls.append(piece)
                    continue
                turn.mark("first_token")
                pieces.append(piece)
                for sentence in splitter.push(piece):
                    if turn.mark("first_sentence"):
                        turn.first_phrase, turn.first_phrase_pieces = sentence, len(pieces)
                        logger.debug(
                            "turn %d: first sentence after %d pieces, %.0f ms after the first token",
                            turn.id,
                            len(pieces),
                            1000 * (turn.marks["first_sentence"] - turn.marks["first_token"]),
                        )
                    self.sentence_out()
                    yield Sentence(sentence, transcript.language, turn)
        finally:
            turn.mark("prompt_read")  # (a reply with no piece at all, or a failed one)
            close = getattr(stream, "close", None)
            if close is not None:  # stop the backend now (a cancelled turn), not whenever it is collected
                close()
            if turn.interrupted:  # the user cut in while it was still being written: the history keeps what was heard
                turn.record_reply(
                    lambda text: chat.append(question, text, transcript.language),
                    cut_reply(remembered("".join(pieces).strip())),
                )
        rest = splitter.flush()
        if rest and turn.mark("first_sentence"):
            turn.first_phrase, turn.first_phrase_pieces = rest, len(pieces)
        reply = "".join(pieces).strip()
        if calls:  # the answer waits for the client to run them: the question stays open
            chat.pending = [{"role": "user", "content": question}, _call_message(reply, calls)]
            for call in calls:
                turn.conversation.events.function_call(turn, call)
            yield Sentence(rest, transcript.language, turn, last=True)
            return
        chat.pending = []

        def record() -> None:  # only once the turn is certain: a withdrawn speculative turn leaves no trace
            turn.record_reply(lambda text: chat.append(question, text, transcript.language), remembered(reply))
            print_assistant(reply)

        turn.when_confirmed(record)
        yield Sentence(rest, transcript.language, turn, last=True)
        if not turn.confirmed:  # the end of turn is still undecided: read ahead once it is, when the model is free
            turn.when_confirmed(lambda: self._read_ahead.append((turn, chat)))
        elif not turn.cancelled:
            self.after_reply(chat)

    def idle(self) -> None:
        while self._read_ahead:
            turn, chat = self._read_ahead.popleft()
            if not turn.cancelled:
                self.before_reply(turn.conversation)
                self.after_reply(chat)
