"""Barge-in with fakes: the VAD hears the user over the reply, short sounds do not count, the interrupted turn stops
every stage, and the history keeps the part of the reply that was heard."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from arguments_classes.parsing import parse_arguments
from LLM.chat import Chat
from tests.fakes import ScriptedVADModel, silence_pcm, tone_pcm
from utils.pipeline.messages import (
    INTERRUPTED,
    AudioFrame,
    Conversation,
    ConversationEvents,
    SpeechSegment,
    Turn,
    is_cancelled,
)
from utils.pipeline.reply_timeline import ReplyTimeline
from VAD.vad_handler import VADHandler


class Recorder(ConversationEvents):
    def __init__(self, heard: str = "") -> None:
        self.calls: list[tuple] = []
        self._heard = heard

    def speech_started(self, turn_audio_ms):
        self.calls.append(("started", round(turn_audio_ms)))

    def speech_stopped(self, turn_audio_ms):
        self.calls.append(("stopped", round(turn_audio_ms)))

    def committed(self, turn):
        self.calls.append(("committed", turn.id))

    def heard(self, turn):
        return self._heard

    def interrupted(self, turn):
        self.calls.append(("interrupted", turn.id))

    def reply_paused(self, turn):
        self.calls.append(("paused", turn.id))

    def reply_resumed(self, turn):
        self.calls.append(("resumed", turn.id))


def vad(*flags) -> VADHandler:
    config = parse_arguments(["--end_of_turn", "silence", "--speculative_silence_ms", "0", *flags]).vad  # (last wins)
    return VADHandler(threading.Event(), None, None, setup_kwargs={"config": config, "model": ScriptedVADModel()})


def feed(handler: VADHandler, conversation: Conversation, pcm: bytes, chunk: int = 1024) -> list:
    out = []
    for i in range(0, len(pcm), chunk):
        out += list(handler.process(AudioFrame(pcm[i : i + chunk], conversation)))
    return out


def test_speech_over_the_reply_interrupts_it_and_becomes_the_next_question():
    events = Recorder(heard="The knight rode")
    conversation = Conversation(events, barge_in=True)
    handler = vad("--barge_in_min_ms", "300")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    assert isinstance(first, SpeechSegment) and conversation.reply is first.turn
    assert not conversation.should_listen.is_set()  # answering
    # the user speaks over the reply for 1.2 s: the reply stops, and all of that speech is the next question
    (second,) = feed(handler, conversation, silence_pcm(0.3) + tone_pcm(1.2) + silence_pcm(0.8))
    assert first.turn.interrupted and is_cancelled(first) and first.turn.heard == "The knight rode"
    assert 1.55 < len(second.audio) / 16000 < 1.7  # 1.2 s + the 200 ms pads, from the onset: nothing of it lost
    calls = [c[0] for c in events.calls]  # the sound pauses at once; speech_started comes before the cut
    # (the cut comes once the user's turn is certain: a backchannel would have let the reply play on)
    assert calls == ["started", "stopped", "committed", "paused", "started", "stopped", "interrupted", "committed"]
    assert events.calls[4][1] == pytest.approx(1800 + 300, abs=80)  # the onset, on the conversation's audio clock
    assert events.calls[5][1] == pytest.approx(1800 + 300 + 1200, abs=80)  # the voice's end


def test_a_pause_that_is_not_the_end_is_not_said_to_the_client():
    # the work starts at the tentative cut, but speech_stopped waits for the end of the turn (as the Realtime API's
    # server VAD says it): a client that showed every tentative cut would show a turn the user talked through
    events = Recorder()
    conversation = Conversation(events)
    handler = vad("--speculative_silence_ms", "150", "--min_silence_ms", "600")
    out = feed(handler, conversation, tone_pcm(0.8) + silence_pcm(0.3) + tone_pcm(0.8) + silence_pcm(1.0))
    assert [c[0] for c in events.calls] == ["started", "stopped", "committed"]
    assert out[0].turn.withdrawn and out[-1].turn.confirmed


def test_short_sounds_over_the_reply_do_not_interrupt_it():
    conversation = Conversation(Recorder(), barge_in=True)
    handler = vad("--barge_in_min_ms", "300")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    for _ in range(5):  # coughs, "mm-hmm"s
        assert feed(handler, conversation, tone_pcm(0.2) + silence_pcm(0.8)) == []
    assert not first.turn.cancelled and conversation.reply is first.turn


def test_without_barge_in_speech_during_the_reply_is_not_heard():
    conversation = Conversation(Recorder())
    handler = vad()
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    assert feed(handler, conversation, tone_pcm(1.5) + silence_pcm(0.8)) == []
    assert not first.turn.cancelled


def test_the_history_keeps_what_was_heard_whether_the_cut_comes_before_or_after_the_reply_is_recorded():
    chat = Chat(4)
    late = Turn(Conversation(), speech_end=0.0)  # recorded first, interrupted while it plays
    late.record_reply(lambda text: chat.append("Tell me a story.", text), "Once upon a time there was a knight.")
    late.interrupt("Once upon a")
    early = Turn(Conversation(), speech_end=0.0)  # interrupted while the model still wrote it
    early.interrupt("It was")
    early.record_reply(lambda text: chat.append("And then?", text), "It was a dark and stormy night.")
    early.record_reply(lambda text: chat.append("And then?", text), "again")  # a second record is ignored
    assert [a["content"] for _, a in chat.exchanges] == [f"Once upon a {INTERRUPTED}", f"It was {INTERRUPTED}"]
    late.revise_heard("Once")  # the client says how far it really played (conversation.item.truncate)
    assert chat.exchanges[0][1]["content"] == f"Once {INTERRUPTED}"


def test_interrupting_with_no_reply_under_way_does_nothing():
    conversation = Conversation(Recorder())
    assert conversation.interrupt() is None
    turn = Turn(conversation, speech_end=time.monotonic())
    conversation.reply_started(turn)
    conversation.reply_finished(turn)
    assert conversation.interrupt() is None and not turn.cancelled and conversation.should_listen.is_set()


def test_the_timeline_gives_the_words_played():
    timeline = ReplyTimeline()
    for text, ms in (("One two three four.", 1000), ("", 1000), ("Five six.", 1000)):
        timeline.add(text, ms)
    assert timeline.heard(0) == ""
    assert timeline.heard(1000) == "One two"  # half of the first sentence's 2 s: half its words
    assert timeline.heard(2000) == "One two three four."
    assert timeline.heard(2500) == "One two three four. Five"
    assert timeline.heard(5000) == timeline.text == "One two three four. Five six."


def test_while_the_user_talks_over_it_the_history_shows_the_reply_cut_until_it_plays_on():
    chat = Chat(4)
    conversation = Conversation(Recorder(heard="Once upon"), barge_in=True)
    turn = Turn(conversation, speech_end=0.0)
    conversation.reply_started(turn)
    turn.record_reply(lambda text: chat.append("A story?", text), "Once upon a time.")
    conversation.pause_reply()
    conversation.expect_cut()  # a reply to the new words, started speculatively, sees the reply as heard
    assert chat.exchanges[0][1]["content"] == f"Once upon {INTERRUPTED}"
    conversation.resume_reply()  # a backchannel after all
    assert chat.exchanges[0][1]["content"] == "Once upon a time." and not turn.cancelled


def test_a_backchannel_in_two_parts_lets_the_reply_play_on():
    # "mm ... hmm" over the reply: its first part, transcribed at the pause, is a backchannel (STT/base.py withdraws the
    # turn and the reply plays on); the second part is heard afresh, and is too short to cut in on its own
    events = Recorder()
    conversation = Conversation(events, barge_in=True)
    handler = vad("--barge_in_min_ms", "300", "--speculative_silence_ms", "150", "--min_silence_ms", "600")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    tentative = feed(handler, conversation, tone_pcm(0.6) + silence_pcm(0.2))
    assert [s.turn.tentative for s in tentative] == [True] and conversation.paused is first.turn
    tentative[0].turn.withdraw()  # what the STT does with "Mm."
    conversation.resume_reply()
    assert feed(handler, conversation, tone_pcm(0.2) + silence_pcm(1.0)) == []
    assert not first.turn.cancelled and conversation.reply is first.turn and conversation.paused is None
    assert ("interrupted", first.turn.id) not in events.calls


def test_a_word_then_a_pause_over_the_reply_holds_it_and_joins_the_rest_of_the_question():
    # "Stop, ... tell me about the weather": the first word and the pause after it do not let the reply play on
    # between them, and the word is part of the question
    events = Recorder()
    conversation = Conversation(events, barge_in=True)
    handler = vad("--barge_in_min_ms", "400")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    assert feed(handler, conversation, tone_pcm(0.3) + silence_pcm(0.7)) == []
    assert conversation.paused is first.turn and ("resumed", first.turn.id) not in events.calls
    (second,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    assert first.turn.interrupted and ("resumed", first.turn.id) not in events.calls
    assert 2.35 < len(second.audio) / 16000 < 2.5  # the word, the pause, the rest, the pads: nothing lost


def test_a_word_with_nothing_after_it_lets_the_reply_play_on_a_second_later():
    events = Recorder()
    conversation = Conversation(events, barge_in=True)
    handler = vad("--barge_in_min_ms", "400")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    assert feed(handler, conversation, tone_pcm(0.3) + silence_pcm(0.8)) == []
    assert conversation.paused is first.turn  # still waiting for the rest of a question
    assert feed(handler, conversation, silence_pcm(0.4)) == []
    assert conversation.paused is None and ("resumed", first.turn.id) in events.calls
    assert not first.turn.cancelled and conversation.reply is first.turn
    # what follows is heard afresh: a short sound after it does not join the word
    assert feed(handler, conversation, tone_pcm(0.1) + silence_pcm(0.5)) == []
    assert not first.turn.cancelled


def test_a_shorter_sound_lets_the_reply_play_on_sooner():
    events = Recorder()
    conversation = Conversation(events, barge_in=True)
    handler = vad("--barge_in_min_ms", "400")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    assert feed(handler, conversation, tone_pcm(0.15) + silence_pcm(0.4)) == []
    assert conversation.paused is None and ("resumed", first.turn.id) in events.calls


@pytest.mark.parametrize("gap_s, joined", [(0.3, True), (0.9, False)])
def test_a_short_sound_right_before_a_cut_in_is_taken_as_its_first_word(gap_s, joined):
    # "Sorry, | how far away is the moon?": the VAD heard too little of "Sorry" to hold the reply, which played on
    # in the pause after it; the cut-in that follows within JOIN_MS starts at that word, so its transcript keeps it
    events = Recorder()
    conversation = Conversation(events, barge_in=True)
    handler = vad("--barge_in_min_ms", "400")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    assert feed(handler, conversation, tone_pcm(0.15) + silence_pcm(gap_s)) == []
    assert ("resumed", first.turn.id) in events.calls  # the short sound let the reply play on
    (second,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    assert first.turn.interrupted
    cut_in_s = 1.0 + 0.4  # the cut-in and its pads
    extra_s = len(second.audio) / 16000 - cut_in_s
    if joined:  # the word, and the pause after it, come first
        assert 0.15 + gap_s - 0.05 <= extra_s <= 0.15 + gap_s + 0.25, extra_s
    else:
        assert abs(extra_s) < 0.1, extra_s


def test_the_pause_says_how_long_after_the_capture_of_its_window_it_came(caplog):
    # local mode stamps each microphone frame with its capture; a window early in a long frame was captured long
    # before the frame's last sample: the log line must count from the window, not from the frame
    conversation = Conversation(Recorder(), barge_in=True)
    handler = vad("--barge_in_min_ms", "300")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    frame = tone_pcm(0.1) + silence_pcm(0.9)  # a window of sound at the start of a one-second frame
    with caplog.at_level("INFO", logger="VAD.vad_handler"):
        list(handler.process(AudioFrame(frame, conversation, captured_at=time.monotonic())))
    (line,) = [r.getMessage() for r in caplog.records if "paused it; it plays on" in r.getMessage()]
    lag = float(line.split("(paused ")[1].split(" ms")[0])
    assert 960 <= lag < 1200  # the first sound window ends 32 ms into the frame: 968 ms before its end


def test_a_cut_in_shorter_than_min_speech_is_still_transcribed_so_its_words_decide():
    # "Stop!" or "Right." over the reply: longer than --barge_in_min_ms, shorter than --min_speech_ms. Skipped as too
    # short at the tentative cut, "right" could become a turn at the final cut without its transcript being checked
    conversation = Conversation(Recorder(), barge_in=True)
    flags = ["--barge_in_min_ms", "300", "--speculative_silence_ms", "150", "--min_silence_ms", "600"]
    handler = vad(*flags, "--min_speech_ms", "500")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    (tentative,) = feed(handler, conversation, tone_pcm(0.4) + silence_pcm(0.2))
    assert tentative.turn.tentative and not tentative.turn.settled and conversation.paused is first.turn
    assert 350 < tentative.speech_ms < 500
    tentative.turn.withdraw()  # what the STT does with "Right."
    conversation.resume_reply()
    assert feed(handler, conversation, silence_pcm(1.0)) == []
    assert not first.turn.cancelled and conversation.reply is first.turn


def test_a_murmured_first_word_holds_the_reply_and_what_follows_joins_it():
    # "Sorry, ... how far away is the moon?": Whisper makes "Far away." of the word, a murmur. The reply stays paused,
    # and the rest of the question, said within a second, joins the word in one turn
    events = Recorder()
    conversation = Conversation(events, barge_in=True)
    flags = ["--barge_in_min_ms", "300", "--speculative_silence_ms", "150", "--min_silence_ms", "300"]
    handler = vad(*flags, "--min_speech_ms", "500")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    (word,) = feed(handler, conversation, tone_pcm(0.4) + silence_pcm(0.2))
    word.turn.murmur = True  # what the STT does with "Far away."
    word.turn.withdraw()
    (merged,) = feed(handler, conversation, silence_pcm(0.4) + tone_pcm(1.0) + silence_pcm(0.8))
    assert merged.turn.confirmed and first.turn.interrupted and ("resumed", first.turn.id) not in events.calls
    assert 2.35 < len(merged.audio) / 16000 < 2.5  # the word, the pause, the rest, the pads: nothing lost


def test_a_murmur_with_nothing_after_it_lets_the_reply_play_on_a_second_later():
    events = Recorder()
    conversation = Conversation(events, barge_in=True)
    flags = ["--barge_in_min_ms", "300", "--speculative_silence_ms", "150", "--min_silence_ms", "300"]
    handler = vad(*flags, "--min_speech_ms", "500")
    (first,) = feed(handler, conversation, tone_pcm(1.0) + silence_pcm(0.8))
    (murmur,) = feed(handler, conversation, tone_pcm(0.4) + silence_pcm(0.2))
    murmur.turn.murmur = True  # "And damn them." for a hummed "mm-hmm"
    murmur.turn.withdraw()
    assert feed(handler, conversation, silence_pcm(0.6)) == [] and conversation.paused is first.turn
    assert feed(handler, conversation, silence_pcm(0.4)) == []
    assert conversation.paused is None and ("resumed", first.turn.id) in events.calls
    assert not first.turn.cancelled and conversation.reply is first.turn


@pytest.mark.parametrize(("text", "murmur", "resumed"), [("Yeah.", False, True), ("Far away.", True, False)])
def test_the_stt_lets_the_reply_play_on_at_once_on_backchannel_words_and_leaves_a_murmur_to_the_vad(
    text, murmur, resumed
):
    from STT.base import STTHandler

    class Scripted(STTHandler):
        def setup(self):
            pass

        def recognize(self, audio):
            return text, "en"

    events = Recorder()
    conversation = Conversation(events, barge_in=True)
    reply = Turn(conversation, speech_end=0.0)
    conversation.reply_started(reply)
    conversation.pause_reply()
    said = Turn(conversation, speech_end=0.0, tentative=True)
    stt = Scripted(threading.Event(), None, None)
    assert list(stt.process(SpeechSegment(np.zeros(8000, np.float32), said, 500.0))) == []
    assert said.withdrawn and said.murmur is murmur
    assert (conversation.paused is None) is resumed and (("resumed", reply.id) in events.calls) is resumed
