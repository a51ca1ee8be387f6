"""Speculative end of turn: work starts after a short silence, is spoken only once the silence is long
enough, and is withdrawn without a trace when the user goes on."""
import queue
import threading

import numpy as np
import pytest

from arguments_classes.parsing import parse_arguments
from listen_and_play import converse
from tests.fake_server import FakeServer
from tests.fakes import DurationWhisper, ScriptedVADModel, silence_pcm, tone_pcm
from utils.audio import SAMPLE_RATE
from utils.pipeline.messages import END, AudioFrame, Conversation, SpeechSegment, Turn
from VAD.utterance_detector import UtteranceDetector
from VAD.vad_handler import VADHandler


def windows(pcm: bytes):
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    return [samples[i:i + 512] for i in range(0, len(samples) - 511, 512)]


def test_turn_callbacks_run_once_confirmed_and_never_when_withdrawn():
    kept, dropped = Turn(Conversation(), 0.0, tentative=True), Turn(Conversation(), 0.0, tentative=True)
    calls = []
    kept.when_confirmed(lambda: calls.append("kept"))
    dropped.when_confirmed(lambda: calls.append("dropped"))
    assert not kept.wait_settled(0.01) and not kept.cancelled
    kept.confirm()
    dropped.withdraw()
    dropped.confirm()  # too late: withdrawn stays withdrawn
    kept.when_confirmed(lambda: calls.append("late"))
    assert calls == ["kept", "late"]
    assert kept.confirmed and not kept.cancelled
    assert dropped.withdrawn and dropped.cancelled


def test_detector_cuts_tentatively_then_finally():
    detector = UtteranceDetector(ScriptedVADModel(), min_silence_ms=300, speculative_silence_ms=150)
    events = [u for u in map(detector.push, windows(tone_pcm(1.0) + silence_pcm(0.5))) if u is not None]
    assert [u.final for u in events] == [False, True]
    assert abs(events[0].speech_ms - events[1].speech_ms) < 1


def test_detector_speculates_again_after_the_user_goes_on():
    detector = UtteranceDetector(ScriptedVADModel(), min_silence_ms=300, speculative_silence_ms=150)
    pcm = tone_pcm(0.8) + silence_pcm(0.2) + tone_pcm(0.8) + silence_pcm(0.5)
    events = [u for u in map(detector.push, windows(pcm)) if u is not None]
    assert [u.final for u in events] == [False, False, True]
    assert events[2].speech_ms > 1700


class DecayingVAD:
    """Silero's shape: high while the voice lasts, then a slow decay through the hysteresis band."""

    def __init__(self, probs):
        self.probs = iter(probs)

    def reset_states(self):
        pass

    def __call__(self, window):
        return next(self.probs, 0.0)


def decaying_detector(probs):
    """A detector speculating at 150 ms, final at 300, over DecayingVAD's scripted probabilities."""
    return UtteranceDetector(DecayingVAD(probs), thresh=0.3, min_silence_ms=300, speculative_silence_ms=150,
                             min_speech_ms=100)


def speculation_and_final_cut(probs, audio):
    detector = decaying_detector(probs)
    events = {}
    for i, window in enumerate(audio):
        utterance = detector.push(window)
        if utterance is not None:
            events["final" if utterance.final else "speculative"] = i
    return events


def test_speculation_counts_from_the_voice_s_end_in_the_audio_not_silero_s_lag():
    # silero's probability stays high for 3 windows after the voice (a tone, windows 0-16) has stopped
    probs = [0.9] * 20 + [0.2] * 4 + [0.01] * 20
    audio = windows(tone_pcm(17 * 512 / SAMPLE_RATE)) + [np.zeros(512, np.float32)] * 27
    events = speculation_and_final_cut(probs, audio)
    assert events["speculative"] == 21  # 150 ms after the tone's end: 5 windows less 8 ms, once below thresh
    assert events["final"] == 23 + 10  # the final cut still waits for 300 ms below the hysteresis band


def test_speculation_does_not_wait_for_silero_s_decay_over_quiet_audio():
    # silero stays at thresh for 8 windows (256 ms) after the tone: its decay, not the user
    probs = [0.9] * 25 + [0.01] * 20
    audio = windows(tone_pcm(17 * 512 / SAMPLE_RATE)) + [np.zeros(512, np.float32)] * 28
    detector = decaying_detector(probs)
    events, heard = {}, []
    for i, window in enumerate(audio):
        utterance = detector.push(window)
        heard.append(detector.hearing_speech)
        if utterance is not None:
            events.setdefault("final" if utterance.final else "speculative", []).append(i)
    assert heard[16] and not any(heard[17:])  # the decay over quiet audio is not speech: nothing withdraws the turn
    assert events["speculative"] == [21]  # 150 ms after the tone's end, while silero is still at thresh
    assert events["final"] == [24 + 10]  # the final cut waits for silero's 300 ms below the hysteresis band


@pytest.mark.parametrize("tail_db, speculative", [(22, 21), (18, 21 + 4)])
def test_a_tail_over_20_db_under_the_loudest_is_the_voice_s_end_a_louder_one_is_voice(tail_db, speculative):
    # a loud tone, then 4 windows of the same tone tail_db softer (a fading voice), with silero up over it
    probs = [0.9] * 21 + [0.01] * 20
    tail = np.frombuffer(tone_pcm(4 * 512 / SAMPLE_RATE, amplitude=0.3 * 10 ** (-tail_db / 20)), dtype="<i2")
    audio = windows(tone_pcm(17 * 512 / SAMPLE_RATE)) + windows(tail.tobytes()) + [np.zeros(512, np.float32)] * 20
    detector = decaying_detector(probs)
    cuts = [i for i, window in enumerate(audio) if (u := detector.push(window)) is not None and not u.final]
    assert cuts == [speculative]  # 150 ms after the tone's end, or after the tail's


def test_silero_up_over_quiet_audio_for_longer_than_its_decay_is_soft_speech():
    # a loud start, then a voice 40 dB softer that silero still hears for 20 windows (640 ms): the user goes on
    probs = [0.9] * 37 + [0.01] * 20
    soft = np.frombuffer(tone_pcm(20 * 512 / SAMPLE_RATE, amplitude=0.003), dtype="<i2").astype(np.float32) / 32768
    audio = windows(tone_pcm(17 * 512 / SAMPLE_RATE)) + [soft[i:i + 512] for i in range(0, 20 * 512, 512)]
    audio += [np.zeros(512, np.float32)] * 20
    detector = decaying_detector(probs)
    events, heard = [], []
    for i, window in enumerate(audio):
        utterance = detector.push(window)
        heard.append(detector.hearing_speech)
        if utterance is not None:
            events.append((i, utterance.final))
            last = utterance
    first_heard_again = 17 + heard[17:].index(True)
    assert 17 + 9 <= first_heard_again <= 17 + 11  # past SILERO_DECAY_MS of quiet the soft voice is speech again
    assert all(heard[first_heard_again:37]) and not any(heard[37:])
    # a tentative cut in the soft stretch (withdrawn as the voice is heard again); then, the level unable to say where
    # a soft voice ends, the next one counts 150 ms of silero below thresh; and the final cut
    assert events == [(21, False), (37 + 4, False), (37 + 9, True)]
    assert last.speech_ms >= 37 * 32  # the utterance holds the soft part


def test_speculation_counts_from_the_voice_s_end_and_the_final_cut_waits_for_the_hysteresis():
    # 20 windows of voice, 4 in the hysteresis band (0.15 <= p < 0.3), then silence; 32 ms windows. The audio is
    # loud all along (noise the VAD does not call speech): time below thresh is all there is to count.
    probs = [0.9] * 20 + [0.2] * 4 + [0.01] * 20
    noise = np.random.default_rng(0).uniform(-0.1, 0.1, 512).astype(np.float32)
    assert speculation_and_final_cut(probs, [noise] * len(probs)) == {"speculative": 19 + 5, "final": 23 + 10}
    detector = decaying_detector(probs)
    events, heard = {}, []
    for i in range(len(probs)):
        utterance = detector.push(noise)
        heard.append(detector.hearing_speech)
        if utterance is not None:
            events["final" if utterance.final else "speculative"] = i
    assert heard[19] and not any(heard[20:24])  # the decay is not the user speaking
    assert events["speculative"] == 19 + 5  # 150 ms = 5 windows below thresh, the decay included
    assert events["final"] == 23 + 10  # 300 ms = 10 windows below the hysteresis band


def run_vad(pcm: bytes):
    conversation = Conversation()
    q_in, q_out = queue.Queue(), queue.Queue()
    config = parse_arguments(["--speculative_silence_ms", "150", "--end_of_turn", "silence"]).vad
    handler = VADHandler(threading.Event(), q_in, q_out, setup_kwargs={"config": config, "model": ScriptedVADModel()})
    for i in range(0, len(pcm), 1024):
        q_in.put(AudioFrame(pcm[i:i + 1024], conversation))
    q_in.put(END)
    handler.run()
    out = []
    while not q_out.empty():
        out.append(q_out.get())
    return conversation, [o for o in out if isinstance(o, SpeechSegment)]


def test_vad_withdraws_the_speculative_turn_when_speech_resumes():
    conversation, segments = run_vad(tone_pcm(0.8) + silence_pcm(0.2) + tone_pcm(0.8) + silence_pcm(0.5))
    first, second = (s.turn for s in segments)
    assert first.withdrawn and first.cancelled
    assert second.confirmed and not second.cancelled
    assert len(segments[1].audio) / SAMPLE_RATE > 1.7  # the whole utterance
    assert not conversation.should_listen.is_set()  # answering now


def test_vad_confirms_without_sending_the_utterance_twice():
    conversation, segments = run_vad(tone_pcm(1.0) + silence_pcm(0.5))
    assert len(segments) == 1
    assert segments[0].turn.tentative and segments[0].turn.confirmed


def test_a_pause_mid_question_gives_one_answer_to_the_whole_question(capsys):
    server = FakeServer(DurationWhisper())
    try:
        question = np.frombuffer(tone_pcm(0.8) + silence_pcm(0.2) + tone_pcm(0.8), dtype="<i2")
        (reply, _), = converse("127.0.0.1", server.recv_port, server.send_port, [question], silence_s=5,
                               reply_idle_s=0.5, timeout_s=10)
        out = capsys.readouterr().out
        assert out.count("USER:") == 1 and out.count("ASSISTANT:") == 1
        heard = out.split("USER:")[1].split("\n")[0].split()
        assert len(heard) >= 17  # 1.8 s of question: the whole of it, not its first part
        assert abs(len(reply.audio) / 2 / SAMPLE_RATE - (len(heard) + 2) * 0.1) < 0.05
        # whatever the speculative start on the pause reached, it left no history behind
        assert all(len(messages) == 2 for messages, _ in server.llm.requests)
    finally:
        assert server.stop() == []
