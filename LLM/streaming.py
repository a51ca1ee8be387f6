"""Shared by every language-model backend: stream tokens, hand on sentences, keep the history."""
from __future__ import annotations

import logging
from typing import Iterable, Iterator

from LLM.chat import Chat
from utils.base_handler import BaseHandler
from utils.console import print_assistant
from utils.messages import Sentence, Transcript
from utils.sentences import SentenceSplitter

logger = logging.getLogger(__name__)


class StreamingLanguageModelHandler(BaseHandler):
    """Transcript in, Sentence out. Subclasses load a model in `setup` (calling `setup_chat`) and
    implement `stream(messages)`, a generator of text pieces."""

    def setup_chat(self, config) -> None:
        self.chat = Chat(config.chat_size, config.init_chat_prompt, config.init_chat_role)
        self._conversation = None

    def stream(self, messages: list[dict]) -> Iterable[str]:
        raise NotImplementedError

    def process(self, transcript: Transcript) -> Iterator[Sentence]:
        turn = transcript.turn
        if turn.conversation is not self._conversation:  # a new client: a new conversation
            self._conversation = turn.conversation
            self.chat.clear()
        splitter = SentenceSplitter()
        pieces = []
        for piece in self.stream(self.chat.messages(transcript.text)):
            if turn.cancelled:
                return
            turn.mark("first_token")
            pieces.append(piece)
            for sentence in splitter.push(piece):
                turn.mark("first_sentence")
                yield Sentence(sentence, transcript.language, turn)
        rest = splitter.flush()
        if rest:
            turn.mark("first_sentence")
        reply = "".join(pieces).strip()
        self.chat.append(transcript.text, reply)
        print_assistant(reply)
        yield Sentence(rest, transcript.language, turn, last=True)
