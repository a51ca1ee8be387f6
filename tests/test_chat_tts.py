"""TTS chat-tts (the reference's chatTTS). ChatTTS needs torchaudio, which PyPI has for torch <= 2.11 only: it cannot
install beside this project's torch 2.13, so its handler runs here on a fake with ChatTTS 0.2's interface
(Chat.InferCodeParams, sample_random_speaker, infer(stream=...) yielding (texts, samples) arrays at 24 kHz)."""
import sys
import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest
import torch

from arguments_classes.parsing import parse_arguments
from TTS import BACKENDS
from utils.errors import ConfigError
from utils.pipeline.messages import Conversation, Sentence, Turn

RATE = 24000
PIECE = 2400  # samples per streamed piece (0.1 s)


class FakeChat:
    """ChatTTS.Chat, loaded: a tone of 0.1 s per word, streamed in pieces that are made only as they are read."""

    @dataclass
    class InferCodeParams:  # the fields of ChatTTS.Chat.InferCodeParams the handler sets
        spk_emb: Optional[str] = None
        temperature: float = 0.3
        show_tqdm: bool = True

    def __init__(self) -> None:
        self.calls, self.pieces_made = [], 0

    def sample_random_speaker(self) -> str:
        return ",".join(f"{x:.4f}" for x in torch.randn(4).tolist())  # ChatTTS draws its speaker from torch's generator

    def infer(self, text, stream=False, skip_refine_text=False, params_infer_code=None, **kwargs):
        self.calls.append({"text": text, "stream": stream, "skip_refine_text": skip_refine_text, "params": params_infer_code})
        n = PIECE * len(text.split())
        audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE)).astype(np.float32)
        if not stream:
            return [audio]
        return self.stream(audio)

    def stream(self, audio):
        for start in range(0, len(audio), PIECE):
            self.pieces_made += 1
            yield audio[None, start:start + PIECE]


def make_handler(*flags, model=None):
    backend, config = parse_arguments(["--tts", "chatTTS", *flags]).tts
    return backend.load_handler()(threading.Event(), None, None, setup_kwargs={"config": config, "model": model or FakeChat()})


def new_turn():
    turn = Turn(Conversation(), speech_end=0.0)
    turn.conversation.should_listen.clear()
    return turn


def test_a_sentence_is_streamed_as_16khz_blocks_and_the_last_one_listens_again():
    handler = make_handler("--tts_blocksize", "256")
    turn = new_turn()
    outs = list(handler.process(Sentence("one two three four five", "en", turn)))
    call = handler.model.calls[-1]
    assert call["stream"] is True and call["skip_refine_text"] is True and call["params"].show_tqdm is False
    assert all(len(o.pcm) == 2 * 256 and not o.last for o in outs)
    assert len(outs) == pytest.approx(5 * PIECE * 16000 / RATE / 256, abs=1)  # 24 kHz resampled to 16 kHz
    assert not turn.conversation.should_listen.is_set()
    end = list(handler.process(Sentence("", "en", turn, last=True)))
    assert [(o.pcm, o.last) for o in end] == [(b"", True)] and turn.conversation.should_listen.is_set()


def test_reference_flags_set_stream_block_size_and_device():
    streamed = make_handler("--chat_tts_chunk_size", "256")
    whole = make_handler("--chat_tts_stream", "false", "--chat_tts_chunk_size", "256", "--chat_tts_device", "cpu")
    assert (whole.config.stream, whole.config.blocksize, whole.config.device) == (False, 256, "cpu")
    text = "a sentence of six short words"
    a = b"".join(b for b in streamed.speak(Sentence(text, "en", new_turn())))
    b = b"".join(b for b in whole.speak(Sentence(text, "en", new_turn())))
    assert whole.model.calls[-1]["stream"] is False
    assert abs(len(a) - len(b)) <= 2 * 256  # the same audio either way


def test_leaving_mid_sentence_stops_generating():
    handler = make_handler()
    handler.model.pieces_made = 0
    blocks = handler.speak(Sentence("many words " * 20, "en", new_turn()))  # 40 pieces if read to the end
    next(blocks)
    blocks.close()
    assert handler.model.pieces_made <= 2


def test_one_speaker_per_seed_and_torch_generator_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first, again, other = make_handler(), make_handler(), make_handler("--tts_speaker_seed", "7")
    assert torch.rand(1) == expected_next
    assert first.params.spk_emb == again.params.spk_emb != other.params.spk_emb


def test_generation_and_refine_options_reach_infer():
    handler = make_handler("--tts_gen_temperature", "0.5", "--tts_refine_text")
    list(handler.speak(Sentence("hello", "en", new_turn())))
    call = handler.model.calls[-1]
    assert call["params"].temperature == 0.5 and call["skip_refine_text"] is False
    assert make_handler().params.temperature == 0.3  # not given: ChatTTS's own


def test_without_chattts_the_backend_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ChatTTS", None)
    handler_class = BACKENDS["chat-tts"].load_handler()  # the handler module imports without ChatTTS
    backend, config = parse_arguments(["--tts", "chatTTS"]).tts
    with pytest.raises(ConfigError) as e:
        handler_class(threading.Event(), None, None, setup_kwargs={"config": config})
    assert "pip install ChatTTS" in str(e.value) and "torchaudio" in str(e.value) and "\n" not in str(e.value)


def test_an_unreachable_hub_is_one_line(monkeypatch):
    from utils import hub

    monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    monkeypatch.setattr(hub, "is_cached", lambda name: False)
    monkeypatch.setitem(sys.modules, "ChatTTS", type(sys)("ChatTTS"))  # installed, but its weights are not here
    sys.modules["ChatTTS"].Chat = lambda logger: FakeChat()
    backend, config = parse_arguments(["--tts", "chat-tts"]).tts
    with pytest.raises(ConfigError, match="'2Noise/ChatTTS' is not a local directory .* unreachable"):
        backend.load_handler()(threading.Event(), None, None, setup_kwargs={"config": config})
