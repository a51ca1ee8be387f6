import queue
import threading

import numpy as np
import pytest

from arguments_classes.parsing import parse_arguments
from tests.fakes import ScriptedVADModel, silence_pcm, tone_pcm
from utils.audio import SAMPLE_RATE
from utils.pipeline.messages import END, AudioFrame, Conversation, SpeechSegment
from VAD.utterance_detector import UtteranceDetector
from VAD.vad_handler import VADHandler


def windows(pcm: bytes):
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    return [samples[i:i + 512] for i in range(0, len(samples) - 511, 512)]


def detect(pcm: bytes, **kwargs):
    detector = UtteranceDetector(ScriptedVADModel(), **kwargs)
    return [u for u in map(detector.push, windows(pcm)) if u is not None]


def test_an_utterance_ends_after_the_minimum_silence():
    found = detect(silence_pcm(0.5) + tone_pcm(1.0) + silence_pcm(0.5), min_silence_ms=300, speech_pad_ms=30)
    assert len(found) == 1
    assert found[0].skipped is None
    assert 950 <= found[0].speech_ms <= 1050
    assert abs(len(found[0].audio) / SAMPLE_RATE - (1.0 + 2 * 0.03)) < 0.04


def test_short_pauses_do_not_split_an_utterance():
    pcm = tone_pcm(0.6) + silence_pcm(0.15) + tone_pcm(0.6) + silence_pcm(0.5)
    found = detect(pcm, min_silence_ms=300)
    assert len(found) == 1 and found[0].speech_ms > 1300


def test_too_short_and_too_long_utterances_are_skipped():
    assert detect(tone_pcm(0.2) + silence_pcm(0.5), min_speech_ms=500)[0].skipped == "too short"
    assert detect(tone_pcm(2.0) + silence_pcm(0.5), max_speech_ms=1000)[0].skipped == "too long"


def test_no_speech_gives_nothing():
    assert detect(silence_pcm(2.0)) == []


def run_vad(frames):
    stop, q_in, q_out = threading.Event(), queue.Queue(), queue.Queue()
    handler = VADHandler(stop, q_in, q_out, setup_kwargs={"config": parse_arguments(["--end_of_turn", "silence"]).vad, "model": ScriptedVADModel()})
    for frame in frames + [END]:
        q_in.put(frame)
    handler.run()
    out = []
    while not q_out.empty():
        out.append(q_out.get())
    return out


def odd_chunks(pcm: bytes, size: int = 777):
    return [pcm[i:i + size] for i in range(0, len(pcm), size)]


def test_handler_accepts_odd_byte_counts_and_stops_listening_after_an_utterance():
    conversation = Conversation()
    pcm = silence_pcm(0.3) + tone_pcm(1.0) + silence_pcm(0.6) + tone_pcm(1.0) + silence_pcm(0.6)
    out = run_vad([AudioFrame(c, conversation) for c in odd_chunks(pcm)])
    segments = [o for o in out if isinstance(o, SpeechSegment)]
    # the second utterance arrives while the assistant is answering: not heard
    assert len(segments) == 1
    assert not conversation.should_listen.is_set()
    assert segments[0].turn.conversation is conversation
    assert segments[0].audio.dtype == np.float32
    assert out[-1] is END


def test_audio_is_ignored_while_not_listening():
    answering = Conversation()
    answering.should_listen.clear()
    out = run_vad([AudioFrame(c, answering) for c in odd_chunks(tone_pcm(1.0) + silence_pcm(0.6))])
    assert out == [END]


def test_a_new_conversation_starts_from_a_clean_state():
    first, second = Conversation(), Conversation()
    # the first client leaves mid-utterance; the second's speech must not be glued to it
    frames = [AudioFrame(tone_pcm(0.8), first), AudioFrame(silence_pcm(0.2) + tone_pcm(0.7) + silence_pcm(0.6), second)]
    out = run_vad(frames)
    segments = [o for o in out if isinstance(o, SpeechSegment)]
    assert len(segments) == 1
    assert segments[0].turn.conversation is second
    pad_s = parse_arguments([]).vad.speech_pad_ms / 1000
    assert len(segments[0].audio) / SAMPLE_RATE < 0.7 + 2 * pad_s + 0.1  # the second client's 0.7 s only, padded


@pytest.mark.integration
def test_real_silero_finds_one_utterance_in_speech():
    from tests.speech import espeak
    from VAD.silero_onnx import SileroOnnxModel

    speech = espeak("What is the capital of France?")
    pcm = silence_pcm(0.5) + speech.tobytes() + silence_pcm(1.0)
    detector = UtteranceDetector(SileroOnnxModel(), thresh=0.3, min_silence_ms=300)
    found = [u for u in map(detector.push, windows(pcm)) if u is not None]
    assert len(found) == 1
    assert abs(len(found[0].audio) / SAMPLE_RATE - len(speech) / SAMPLE_RATE) < 0.5
