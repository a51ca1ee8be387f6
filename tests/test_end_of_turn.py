"""End of turn: the VAD's decision with a fake end-of-turn model, and the real Smart Turn model on made speech."""
import queue
import threading

import numpy as np
import pytest

from arguments_classes.parsing import parse_arguments
from tests.fakes import ScriptedVADModel, silence_pcm, tone_pcm
from utils.pipeline.messages import AudioFrame, Conversation, SpeechSegment
from VAD.end_of_turn import ends_sentence
from VAD.vad_handler import VADHandler

WINDOW_BYTES = 1024  # 512 samples, 32 ms


class FakeTurnEnd:
    """P(complete) fixed by the test; remembers how much audio it was asked about."""

    def __init__(self, p: float) -> None:
        self.p = p
        self.asked: list[int] = []

    def probability(self, audio: np.ndarray) -> float:
        self.asked.append(len(audio))
        return self.p


class Run:
    """Feeds a VAD handler window by window and plays the STT: each speculative segment gets a transcript."""

    def __init__(self, model: FakeTurnEnd | None, transcript: str = "What is the capital of France?", flags=(),
                 transcribe: bool = True, sentence_end_probability: float | None = None) -> None:
        config = parse_arguments(["--speculative_silence_ms", "150", "--min_silence_ms", "300",
                                  "--max_turn_silence_ms", "1200", *flags]).vad
        kwargs = {"config": config, "model": ScriptedVADModel()}
        if model is not None:
            kwargs["turn_end_model"] = model
        self.handler = VADHandler(threading.Event(), queue.Queue(), queue.Queue(), setup_kwargs=kwargs)
        self.conversation = Conversation()
        self.transcript = transcript
        self.sentence_end_probability = sentence_end_probability  # how sure the recogniser is of the ending
        self.transcribe = transcribe  # False: the test marks the transcripts itself (a slow STT)
        self.segments: list[SpeechSegment] = []
        self.ms = 0.0  # audio fed so far

    def feed(self, pcm: bytes) -> None:
        for i in range(0, len(pcm), WINDOW_BYTES):
            for out in self.handler.process(AudioFrame(pcm[i:i + WINDOW_BYTES], self.conversation)):
                self.segments.append(out)
                if self.transcribe:
                    self.transcribed(out.turn)
            self.ms += 32

    def transcribed(self, turn, prompt_read: bool = True) -> None:
        turn.ends_sentence = ends_sentence(self.transcript)  # what the STT does
        turn.sentence_end_probability = self.sentence_end_probability
        turn.mark("transcript")
        if prompt_read:  # what the language model does next
            turn.mark("prompt_read")

    def feed_until_confirmed(self, silence_s: float) -> float | None:
        """Silence until the last turn is confirmed: the ms of silence it took (None: never)."""
        start = self.ms
        for _ in range(int(silence_s * 1000 / 32)):
            self.feed(silence_pcm(0.032))
            if self.segments and self.segments[-1].turn.confirmed:
                return self.ms - start
        return None


def test_a_turn_that_sounds_complete_ends_at_the_speculative_silence():
    run = Run(FakeTurnEnd(0.99))
    run.feed(silence_pcm(0.3) + tone_pcm(1.0))
    waited = run.feed_until_confirmed(2.0)
    assert waited is not None and waited < 300  # before --min_silence_ms: no waiting for more silence
    turn = run.segments[-1].turn
    assert turn.end_decision == "complete" and turn.end_probability == 0.99
    assert not run.conversation.should_listen.is_set()  # the assistant's turn now


def test_the_work_starts_at_the_speculative_silence_and_smart_turn_listens_at_its_own():
    model = FakeTurnEnd(0.99)
    run = Run(model, flags=["--speculative_silence_ms", "64", "--end_of_turn_silence_ms", "150"])
    model.asked.clear()  # (the warm-up)
    run.feed(silence_pcm(0.288) + tone_pcm(0.992))  # whole windows: the voice ends where a window does
    segment_at = asked_at = confirmed_at = None
    for silence_ms in range(32, 1000, 32):
        run.feed(silence_pcm(0.032))
        segment_at = segment_at or (silence_ms if run.segments else None)
        asked_at = asked_at or (silence_ms if model.asked else None)
        if run.segments and run.segments[-1].turn.confirmed:
            confirmed_at = silence_ms
            break
    assert segment_at == 64  # the transcription and the answer start here...
    assert asked_at == 160  # ...Smart Turn hears the first window past 150 ms, once...
    assert model.asked == [len(run.segments[0].audio)]  # ...the same utterance (the pad still to come is zeros)
    assert confirmed_at == 160 and run.segments[-1].turn.end_decision == "complete"


def test_smart_turn_listens_once_the_model_has_read_the_prompt_not_before():
    model = FakeTurnEnd(0.99)
    run = Run(model, transcribe=False)
    model.asked.clear()  # (the warm-up)
    run.feed(silence_pcm(0.288) + tone_pcm(0.992) + silence_pcm(0.32))
    assert len(run.segments) == 1 and not model.asked  # Whisper has the CPU to itself
    run.transcribed(run.segments[0].turn, prompt_read=False)
    run.feed(silence_pcm(0.064))
    assert not model.asked and not run.segments[0].turn.settled  # and then the model's prompt reading
    run.segments[0].turn.mark("prompt_read")
    run.feed(silence_pcm(0.032))
    assert len(model.asked) == 1 and run.segments[0].turn.confirmed


def decision(p_complete: float, sure: float | None, transcript: str = "What should I plant?", flags=()) -> str:
    run = Run(FakeTurnEnd(p_complete), transcript=transcript, sentence_end_probability=sure, flags=flags)
    run.feed(silence_pcm(0.3) + tone_pcm(1.0))
    assert run.feed_until_confirmed(3.0) is not None
    return run.segments[-1].turn.end_decision


def test_a_first_part_that_is_a_question_of_its_own_needs_smart_turn_very_sure():
    """"What should I plant? | in my garden": Whisper fairly sure of its "?" and Smart Turn at 0.97 (the first parts
    still answered at 0.95 scored 0.95-0.974) wait; 0.98 ends the turn."""
    assert decision(0.972, 0.93) == "waited"
    assert decision(0.986, 0.93) == "complete"


def test_whisper_nearly_certain_of_its_sentence_end_lets_a_doubted_voice_end_the_turn():
    """"What year did the Second World War end?": Smart Turn 0.969, Whisper 0.994 sure: answered at once."""
    assert decision(0.969, 0.994) == "complete"
    assert decision(0.94, 0.994) == "waited"  # below 0.95 the voice still decides
    assert decision(0.969, 0.994, flags=["--end_of_turn_sure_text_threshold", "1"]) == "waited"  # the exception off
    assert decision(0.9, 0.5, flags=["--end_of_turn_threshold", "0.8", "--end_of_turn_text_threshold", "0.4"]) == "complete"


def test_a_recogniser_that_cannot_say_how_sure_it_is_leaves_the_voice_to_decide():
    assert decision(0.969, None) == "waited"
    assert decision(0.985, None) == "complete"


def test_a_turn_that_sounds_unfinished_waits_then_ends():
    run = Run(FakeTurnEnd(0.1))
    run.feed(silence_pcm(0.3) + tone_pcm(1.0))
    waited = run.feed_until_confirmed(3.0)
    assert waited is not None and 1200 <= waited < 1500  # --max_turn_silence_ms, not --min_silence_ms
    assert run.segments[-1].turn.end_decision == "waited"


def test_a_transcript_without_a_sentence_end_waits_even_when_the_voice_sounds_done():
    run = Run(FakeTurnEnd(0.99), transcript="What is the capital of")
    run.feed(silence_pcm(0.3) + tone_pcm(1.0))
    waited = run.feed_until_confirmed(3.0)
    assert waited is not None and waited >= 1200


def test_a_sentence_end_the_recogniser_is_unsure_of_waits_even_when_the_voice_sounds_done():
    """Whisper closes "Can you tell me" with a "?" when the user pauses there, but less surely than a finished
    question: below --end_of_turn_text_threshold the turn waits as an unfinished one."""
    unsure = Run(FakeTurnEnd(0.99), transcript="Can you tell me?", sentence_end_probability=0.74)
    unsure.feed(silence_pcm(0.3) + tone_pcm(1.0))
    waited = unsure.feed_until_confirmed(3.0)
    assert waited is not None and waited >= 1200 and unsure.segments[-1].turn.end_decision == "waited"
    sure = Run(FakeTurnEnd(0.99), transcript="Can you tell me how a rainbow forms?", sentence_end_probability=0.97)
    sure.feed(silence_pcm(0.3) + tone_pcm(1.0))
    waited = sure.feed_until_confirmed(3.0)
    assert waited is not None and waited < 300 and sure.segments[-1].turn.end_decision == "complete"
    off = Run(FakeTurnEnd(0.99), transcript="Can you tell me?", sentence_end_probability=0.74,
              flags=["--end_of_turn_text_threshold", "0"])
    off.feed(silence_pcm(0.3) + tone_pcm(1.0))
    waited = off.feed_until_confirmed(3.0)
    assert waited is not None and waited < 300


def test_speech_after_the_pause_withdraws_the_turn_and_the_utterance_grows():
    model = FakeTurnEnd(0.1)
    run = Run(model)
    run.feed(silence_pcm(0.3) + tone_pcm(1.0) + silence_pcm(0.8) + tone_pcm(0.8))
    first = run.segments[0].turn
    assert first.withdrawn and not first.confirmed  # the pause did not end the turn
    assert run.conversation.should_listen.is_set()
    model.p = 0.99
    assert run.feed_until_confirmed(2.0) is not None
    second = run.segments[-1]
    assert second.turn is not first and second.turn.confirmed
    assert len(second.audio) > 16000 * (1.0 + 0.8 + 0.8) - 1000  # both parts and the pause, in one utterance


def test_silence_mode_ends_every_turn_after_min_silence():
    run = Run(None, flags=["--end_of_turn", "silence"])
    assert run.handler.turn_end is None
    run.feed(silence_pcm(0.3) + tone_pcm(1.0))
    waited = run.feed_until_confirmed(2.0)
    assert waited is not None and 300 <= waited < 600  # silero's hysteresis counts a window or two late
    assert run.segments[-1].turn.end_decision == "silence"


def test_smart_turn_without_speculation_falls_back_to_silence(caplog):
    run = Run(FakeTurnEnd(0.99), flags=["--speculative_silence_ms", "0"])
    assert run.handler.turn_end is None
    assert "decided by silence alone" in caplog.text


@pytest.mark.parametrize("text, ended", [
    ("What is the capital of France?", True), ("Tell me a joke.", True), ('He said "stop."', True), ("你好。", True),
    ("What is the capital of", False), ("Why is the...", False), ("Well…", False), ("How many legs,", False), ("", False),
])
def test_a_sentence_end_is_a_full_stop_question_or_exclamation_mark_but_not_an_ellipsis(text, ended):
    assert ends_sentence(text) is ended


def test_the_real_model_hears_a_finished_question_and_an_unfinished_one():
    """Smart Turn v3.2 on hibari's voice: a whole question, then its first words cut from the same sentence
    (so they carry the voice of a sentence that goes on), each with the VAD's 200 ms of trailing silence."""
    from tests.speech import hibari, paused
    from VAD.end_of_turn import SmartTurnModel

    model = SmartTurnModel()
    tail = np.zeros(3200, np.float32)
    whole = hibari("How many sides does a triangle have?").astype(np.float32) / 32768
    cut = paused("How many sides does a triangle | have?", 1.0).astype(np.float32) / 32768
    quiet = np.flatnonzero(np.convolve(np.abs(cut) < 0.01, np.ones(8000), "valid") == 8000)[0]
    assert model.probability(np.concatenate([whole, tail])) > 0.5
    assert model.probability(np.concatenate([cut[:quiet], tail])) < 0.5


def test_smart_turn_hears_the_features_it_was_trained_on_without_loading_torch():
    """The log-mel comes from faster-whisper's numpy extractor, not transformers' (which loads torch, whose OpenMP
    runtime llama.cpp would then share): the same values as transformers' for the model's 8 s window."""
    import os
    import subprocess
    import sys

    from transformers import WhisperFeatureExtractor

    from tests.speech import hibari
    from VAD.end_of_turn import RATE, SECONDS, SmartTurnModel

    n = SECONDS * RATE
    audio = np.pad(hibari("How many sides does a triangle have?").astype(np.float32) / 32768, (0, 3200))
    audio = np.pad(audio, (n - len(audio), 0))
    expected = WhisperFeatureExtractor(chunk_length=SECONDS, feature_size=80, sampling_rate=RATE)(
        audio, sampling_rate=RATE, return_tensors="np", padding="max_length", max_length=n, truncation=True,
        do_normalize=True).input_features[0]
    model = SmartTurnModel()
    got = model.features((audio - audio.mean()) / np.sqrt(audio.var() + 1e-7), padding=0)
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4
    probe = ("import sys, numpy as np; from VAD.end_of_turn import SmartTurnModel; "
             "SmartTurnModel().probability(np.zeros(16000, np.float32)); print('torch' in sys.modules)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=root).stdout.strip()
    assert loaded == "False"


def test_real_whisper_is_sure_of_a_finished_question_and_unsure_of_one_cut_by_a_pause():
    """tiny.en on its short window, hibari's voice: the whole question, then its first words cut from the same
    sentence. Whisper ends both with a question mark; how sure it is of that mark tells them apart."""
    from tests.speech import hibari, paused

    config = parse_arguments([])
    stt = config.stt[0].load_handler()(None, None, None, setup_kwargs={"config": config.stt[1]})
    threshold = config.vad.end_of_turn_text_threshold
    tail = np.zeros(3200, np.float32)
    whole = hibari("Can you tell me how a rainbow forms?").astype(np.float32) / 32768
    cut = paused("Can you tell me | how a rainbow forms?", 1.0).astype(np.float32) / 32768
    quiet = np.flatnonzero(np.convolve(np.abs(cut) < 0.01, np.ones(8000), "valid") == 8000)[0]
    finished = stt.recognize_scored(np.concatenate([whole, tail]))
    unfinished = stt.recognize_scored(np.concatenate([cut[:quiet], tail]))
    assert "rainbow" in finished.text.lower() and "rainbow" not in unfinished.text.lower()
    assert finished.sentence_end_probability >= threshold > unfinished.sentence_end_probability
