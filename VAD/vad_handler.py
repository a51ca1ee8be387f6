"""Cuts the incoming 16 kHz int16 streams into utterances, one detector per conversation."""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from utils.core_share import CORES
from utils.pipeline.base_handler import BaseHandler
from utils.pipeline.messages import AudioFrame, Conversation, SpeechSegment, Turn
from VAD.end_of_turn import SmartTurnModel
from VAD.enhancement import load_enhancer
from VAD.silero_onnx import WINDOW, SileroOnnxModel
from VAD.utterance_detector import Utterance, UtteranceDetector

logger = logging.getLogger(__name__)

PAUSE_AFTER_MS = 32  # speech over a reply pauses it at its first window (a false start resumes RESUME_AFTER_MS later)
RESUME_AFTER_MS = 250  # a paused reply plays on after this much quiet that did not become a cut-in
# A sound over the reply this long may be a word said before a pause ("Stop, ...", "Sorry, ..."): the reply stays
# paused for WORD_HOLD_MS of quiet, and speech in that time joins it as one cut-in, the word included. (Resumed after
# RESUME_AFTER_MS, the reply sounded again between the two and the word was lost from the question: 2 cut-ins in 10 in
# the room benchmark.) Echo the canceller leaves and coughs are mostly shorter: 32-224 ms there.
WORD_MS = 250
WORD_HOLD_MS = 1000
# A shorter sound that let the reply play on, followed within JOIN_MS by a cut-in, was most likely its first word
# ("Sorry, | how far away is the moon?": the VAD heard 160-192 ms of "Sorry", then espeak's 200 ms pause): the
# cut-in's audio starts at that sound, so its transcript keeps the word (it was lost in 2 of 10 socket-mode cut-ins).
# Not longer: the canceller's leftovers of the reply's own voice also make short sounds, every few seconds, and one
# joined to a cut-in garbles its start ("Well, time is it in Tokyo?") or turns an "mm-hmm" into words that cut the
# reply. In the room that made this choice, "Sorry" came 256 ms before the rest; echo leftovers 512-672 ms before.
JOIN_MS = 400
RECENT_S = 2.0  # audio kept per conversation during a reply, for that
# With Whisper nearly certain of its sentence end (--end_of_turn_sure_text_threshold), Smart Turn needs only this.
SURE_TEXT_AUDIO_THRESHOLD = 0.95
# Stands for the final cut of an utterance whose tentative turn was confirmed by a stage that waited too long.
_CONFIRMED_ELSEWHERE = Utterance(np.zeros(0, np.float32), 0.0)
# Stands for the final cut of an utterance that the end-of-turn logic heard as complete (its work is under way).
_COMPLETE = Utterance(np.zeros(0, np.float32), 0.0)


def _p(probability: float | None) -> str:
    return "-" if probability is None else f"{probability:.2f}"


class RecentAudio:
    """The last `seconds` of a conversation's audio, windows by their place on its sample clock."""

    def __init__(self, seconds: float = RECENT_S) -> None:
        self._windows: deque[tuple[int, np.ndarray]] = deque(maxlen=int(seconds * 16000) // WINDOW + 1)

    def add(self, first_sample: int, window: np.ndarray) -> None:
        self._windows.append((first_sample, window))

    def between(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) of the clock, as far as they are kept."""
        parts = [w[max(0, start - k):max(0, end - k)] for k, w in self._windows if k < end and k + len(w) > start]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


@dataclass
class _Stream:
    """What the VAD keeps per conversation."""

    detector: UtteranceDetector
    pending: bytes = b""  # bytes short of a whole window (odd sizes, partial frames)
    last_speech_at: float = 0.0
    tentative: Turn | None = None  # started on a short silence, not yet confirmed or withdrawn
    samples_in: int = 0  # the conversation's audio clock, in samples: what the Realtime events count in
    in_utterance: bool = False  # speech_started was said for the current utterance
    cutting_in: bool = False  # this utterance was spoken over the reply and lasts: the reply is cut once it is a turn
    pause_lag_ms: float | None = None  # from the capture of the window that paused the reply to the pause (local mode)
    murmured: bool = False  # this cut-in was heard as a murmur: a turn only if the user goes on (see process)
    recent: RecentAudio = field(default_factory=RecentAudio)  # during a reply: what a cut-in may need from before it
    forgotten: tuple[int, int] | None = None  # (start, end) samples of the last short sound that let the reply play on

    def restart(self) -> None:
        self.detector.reset()
        self.pending = b""
        self.in_utterance = False
        self.cutting_in = False
        self.murmured = False
        if self.tentative is not None:
            self.tentative.withdraw()  # (no-op once confirmed)
            self.tentative = None


class VADHandler(BaseHandler):
    """AudioFrame in, SpeechSegment out. Audio that arrives while the assistant answers (the
    conversation's `should_listen` cleared) is dropped. The model's weights are shared by every
    conversation; its recurrent state is not."""

    def setup(self, config, model=None, turn_end_model=None) -> None:
        self.config = config
        self.model = model or SileroOnnxModel(config.vad_model_path, sample_rate=config.sample_rate)
        # getattr: configs built by hand (tests) may predate the flag
        self.enhance = load_enhancer() if getattr(config, "audio_enhancement", False) else None
        self.turn_end = self._load_turn_end(config, turn_end_model)

    def _stream(self, conversation: Conversation) -> _Stream:
        """The detector state of this conversation, kept in it (freed when it ends)."""
        return conversation.state(self, self._new_stream)

    def _new_stream(self) -> _Stream:
        c = self.config
        # With an end-of-turn model the handler ends complete turns early; the detector's own end is the fallback.
        min_silence_ms = max(c.min_silence_ms, c.max_turn_silence_ms) if self.turn_end else c.min_silence_ms
        detector = UtteranceDetector(self.model.fresh(), c.thresh, c.sample_rate, min_silence_ms,
                                     c.speech_pad_ms, c.min_speech_ms, c.max_speech_ms,
                                     getattr(c, "speculative_silence_ms", 0))
        return _Stream(detector)

    def process(self, frame: AudioFrame):
        conversation = frame.conversation
        stream = self._stream(conversation)
        replying = not conversation.should_listen.is_set() and not stream.cutting_in
        if replying and not conversation.barge_in:
            stream.restart()
            stream.samples_in += len(frame.pcm) // 2
            return
        data = stream.pending + frame.pcm
        usable = len(data) - len(data) % (2 * WINDOW)
        stream.pending = data[usable:]
        samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
        for start in range(0, len(samples), WINDOW):
            stream.samples_in += WINDOW
            if replying:
                stream.recent.add(stream.samples_in - WINDOW, samples[start:start + WINDOW])
            if stream.tentative is not None and stream.tentative.withdrawn and stream.tentative.murmur:
                # the STT heard a murmur: a backchannel, or a first word it could not make out ("Sorry, ..."). The
                # reply stays paused and the utterance goes on: speech within WORD_HOLD_MS joins it (a new tentative
                # turn, the word included); else, after WORD_HOLD_MS of quiet, the reply plays on (just below)
                stream.tentative, stream.murmured = None, True
                stream.detector.hold_open(WORD_HOLD_MS)
            elif stream.tentative is not None and stream.tentative.withdrawn:
                # only the STT withdraws a turn the VAD still holds: a backchannel, and the reply plays on. That
                # utterance is over; what follows ("mm ... hmm") is heard afresh, a cut-in only if it lasts on its own
                stream.restart()
                replying = not conversation.should_listen.is_set()
            utterance = stream.detector.push(samples[start:start + WINDOW])
            if (stream.murmured and stream.tentative is None and not stream.detector.hearing_speech
                    and stream.detector.silence_ms >= WORD_HOLD_MS):
                # a murmur and nothing after it: not a turn; the reply plays on
                logger.info("conversation %d: a murmur over the reply and nothing after it: it plays on", conversation.id)
                conversation.events.speech_stopped(self._audio_ms(stream) - stream.detector.silence_ms)
                conversation.resume_reply()
                stream.restart()
                replying = not conversation.should_listen.is_set()
                continue
            if replying:  # barge-in: the user may cut the reply short; nothing else is a turn yet
                # when this window's last sample was captured: the frame's last is the last of `data`
                captured_at = None if frame.captured_at is None else \
                    frame.captured_at - (len(samples) + len(stream.pending) // 2 - start - WINDOW) / 16000
                if not self._barges_in(stream, conversation, captured_at):
                    if utterance is not None and utterance.final:
                        stream.restart()  # a sound too short to interrupt: forgotten
                    continue
                replying = False  # a cut-in: this utterance goes on as the next question
                utterance = None
            if stream.detector.triggered and not stream.in_utterance:
                stream.in_utterance = True
                conversation.events.speech_started(self._audio_ms(stream) - stream.detector.speech_ms)
            if stream.detector.hearing_speech:
                stream.last_speech_at = time.monotonic()
                if stream.murmured:  # the user goes on after a murmur: a question, whose end is decided as any other's
                    stream.detector.hold_open(0)
                if stream.tentative is not None:  # the user goes on: the speculative turn is void
                    logger.debug("turn %d withdrawn: the user went on speaking", stream.tentative.id)
                    stream.tentative.withdraw()
                    stream.tentative = None
            if stream.tentative is not None and stream.tentative.end_probability is None:
                self._listen_for_end(stream)
            if stream.tentative is not None and stream.tentative.confirmed:
                utterance = utterance or _CONFIRMED_ELSEWHERE  # the TTS stopped waiting for us (no audio came)
            elif stream.tentative is not None and self._turn_complete(stream.tentative):
                utterance = utterance or _COMPLETE  # heard as finished: no need to wait for more silence
            if utterance is None:
                continue
            if utterance.skipped:
                if utterance.final:
                    logger.info("skipped an utterance of %.0f ms (%s)", utterance.speech_ms, utterance.skipped)
                    if stream.cutting_in:  # not a question after all: the reply plays on
                        stream.cutting_in = False
                        conversation.resume_reply()
                    if stream.in_utterance:
                        conversation.events.speech_stopped(self._audio_ms(stream) - stream.detector.silence_ms)
                    stream.in_utterance = False
                continue
            if not utterance.final:
                stream.tentative = Turn(conversation, speech_end=stream.last_speech_at, tentative=True)
                segment = self._segment(utterance, stream.tentative)
                yield segment  # first: the transcription starts while the end-of-turn model listens
                self._listen_for_end(stream)
                continue
            # said once the turn is over, not at a tentative cut the user may talk through
            conversation.events.speech_stopped(self._audio_ms(stream) - stream.detector.silence_ms)
            if stream.cutting_in and (cut := conversation.interrupt()) is not None:
                # the user's turn is certain: the reply it was spoken over is cut now
                logger.info("conversation %d: reply to turn %d cut by the user's turn", conversation.id, cut.id)
            if stream.tentative is not None:
                turn = stream.tentative
                self._log_decision(turn, utterance is _COMPLETE, stream.detector.silence_ms)
                conversation.reply_started(turn)
                conversation.events.committed(turn)
                turn.confirm()  # its work is already under way (its transcript is said as it confirms)
                stream.tentative = None
            else:
                turn = Turn(conversation, speech_end=stream.last_speech_at)
                conversation.reply_started(turn)
                conversation.events.committed(turn)
                yield self._segment(utterance, turn)
            stream.restart()
            if not conversation.barge_in:
                return  # the rest of this frame is the assistant's turn: not listened to
            replying = True

    def _barges_in(self, stream: _Stream, conversation: Conversation, captured_at: float | None = None) -> bool:
        """During a reply: the first sound of speech pauses it (its sound stops at once). Speech that lasts
        --barge_in_min_ms is a cut-in: True, and the utterance goes on as the next question; the reply is cut when
        that turn is certain, unless its transcript is only a backchannel ("mm-hmm", "yeah": STT/base.py), which
        lets the reply play on. A shorter sound (a cough) followed by RESUME_AFTER_MS of quiet lets it play on; after one as
        long as a word (WORD_MS), the reply waits WORD_HOLD_MS for the rest of a question."""
        detector = stream.detector
        if conversation.reply is None:
            return False
        if not detector.triggered:
            conversation.resume_reply()  # (no-op unless paused)
            return False
        word = detector.speech_ms >= WORD_MS
        if detector.hearing_speech and detector.speech_ms >= getattr(self.config, "barge_in_min_ms", 300):
            detector.hold_open(0)  # a question now: its end is decided as any other's
            # heard whatever its length: its transcript decides ("Stop!" cuts the reply, "Right." lets it play on).
            # Skipped as under --min_speech_ms at the tentative cut, a cut-in could still become a turn at the final
            # cut (a later sound joined it) with no transcript checked first: "right" cut 2 replies in 10 that way.
            detector.keep()
            self._pause(stream, conversation, captured_at)
            conversation.expect_cut()
            stream.cutting_in = stream.in_utterance = True
            conversation.events.speech_started(self._audio_ms(stream) - detector.speech_ms)
            logger.info("conversation %d: %.0f ms of speech over the reply: paused while it may be a new turn%s",
                        conversation.id, detector.speech_ms, self._lag(stream))
            self._join_forgotten_word(stream, conversation)
            return True
        if word:
            detector.hold_open(WORD_HOLD_MS)
        if detector.hearing_speech and detector.speech_ms >= PAUSE_AFTER_MS:
            self._pause(stream, conversation, captured_at)
        elif not detector.hearing_speech and detector.silence_ms >= (WORD_HOLD_MS if word else RESUME_AFTER_MS):
            if conversation.resume_reply() is not None:  # (the benchmarks count these: pauses nobody asked for)
                logger.info("conversation %d: a %.0f ms sound over the reply paused it; it plays on%s", conversation.id,
                            detector.speech_ms, self._lag(stream))
            # the sound is forgotten, but a cut-in right after it takes it back (JOIN_MS)
            stream.forgotten = (stream.samples_in - detector.buffered_samples, stream.samples_in - int(16 * detector.silence_ms))
            stream.restart()
        return False

    @staticmethod
    def _join_forgotten_word(stream: _Stream, conversation: Conversation) -> None:
        """A short sound just before this cut-in (JOIN_MS) was its first word: the cut-in's audio starts there."""
        forgotten, stream.forgotten = stream.forgotten, None
        start = stream.samples_in - stream.detector.buffered_samples  # where the cut-in's audio starts now
        if forgotten is None or start - forgotten[1] > JOIN_MS * 16:
            return
        stream.detector.prepend(stream.recent.between(forgotten[0], start))
        logger.info("conversation %d: the sound that ended %.0f ms before it is taken as its first word",
                    conversation.id, (start - forgotten[1]) / 16)

    @staticmethod
    def _pause(stream: _Stream, conversation: Conversation, captured_at: float | None) -> None:
        if conversation.pause_reply() is not None:
            stream.pause_lag_ms = None if captured_at is None else 1000 * (time.monotonic() - captured_at)

    @staticmethod
    def _lag(stream: _Stream) -> str:
        """For the log: how long after its capture the sound paused the reply (the queues' and threads' share of the
        time to silence; the devices and the speech detector's onset add the rest)."""
        return "" if stream.pause_lag_ms is None else f" (paused {stream.pause_lag_ms:.0f} ms after its capture)"

    @staticmethod
    def _audio_ms(stream: _Stream) -> float:
        return 1000 * stream.samples_in / 16000

    def _load_turn_end(self, config, model):
        if getattr(config, "end_of_turn", "silence") != "smart-turn":
            return None
        if not 0 < config.speculative_silence_ms < max(config.min_silence_ms, config.max_turn_silence_ms):
            logger.warning("--end_of_turn smart-turn needs --speculative_silence_ms between 0 and --max_turn_silence_ms "
                           "(it listens at the speculative silence): the end of a turn is decided by silence alone")
            return None
        if getattr(config, "end_of_turn_silence_ms", 0) >= max(config.min_silence_ms, config.max_turn_silence_ms):
            logger.warning("--end_of_turn_silence_ms %d is not shorter than --max_turn_silence_ms: Smart Turn would never "
                           "hear a turn before silence ends it", config.end_of_turn_silence_ms)
        model = model or SmartTurnModel(getattr(config, "end_of_turn_model_path", None))
        model.probability(np.zeros(8000, np.float32))  # warm up here: the first run is ~3x slower
        return model

    def _listen_for_end(self, stream: _Stream) -> None:
        """Smart Turn hears the pending turn once the pause is --end_of_turn_silence_ms long (the audio it was tuned
        on, however early the speculative work began) and the language model has read the prompt: Whisper, then the
        model's prompt reading have both cores to themselves (Smart Turn beside them slowed the first token by ~45
        ms), and the model writes the first phrase on one core while Smart Turn listens on the other."""
        listen_ms = getattr(self.config, "end_of_turn_silence_ms", 0)
        turn = stream.tentative
        if turn is None or self.turn_end is None:
            return
        if "prompt_read" in turn.marks and stream.detector.pause_ms >= listen_ms:
            with CORES.computing():
                turn.end_probability = self.turn_end.probability(self._audio(stream.detector.snapshot()))

    def _turn_complete(self, turn: Turn) -> bool:
        """Complete when the voice sounds finished and the transcript, once there, ends a sentence with the
        recogniser sure of that ending: Whisper often closes a question cut by a pause with a "?" ("Can you tell
        me?"), less surely than a finished one (offline, on hibari's voice: cut 0.34-0.96, most under 0.9; whole
        0.95-1.0, down to 0.87 as the same audio is framed otherwise). A first part that is a question of its own
        ("What should I plant?") can satisfy both; Smart Turn must then be very sure, unless Whisper is nearly certain
        of its sentence end (none of those first parts was)."""
        if turn.end_probability is None or "transcript" not in turn.marks or turn.ends_sentence is False:
            return False
        sure = turn.sentence_end_probability
        if sure is None:  # a recogniser that cannot say: its punctuation alone
            return turn.end_probability >= self.config.end_of_turn_threshold
        audio_needed = self.config.end_of_turn_threshold
        if sure >= getattr(self.config, "end_of_turn_sure_text_threshold", 1.0):
            audio_needed = min(audio_needed, SURE_TEXT_AUDIO_THRESHOLD)
        return turn.end_probability >= audio_needed and sure >= getattr(self.config, "end_of_turn_text_threshold", 0.0)

    def _log_decision(self, turn: Turn, complete: bool, silence_ms: float) -> None:
        if self.turn_end is None:
            turn.end_decision = "silence"
        else:
            turn.end_decision = "complete" if complete else "waited"
        turn.end_silence_ms = silence_ms
        logger.debug("turn %d: end of turn %s after %.0f ms of silence (P complete %s, sentence ended %s, P sentence "
                     "end %s)", turn.id, turn.end_decision, silence_ms, _p(turn.end_probability), turn.ends_sentence,
                     _p(turn.sentence_end_probability))

    def _segment(self, utterance, turn: Turn) -> SpeechSegment:
        logger.debug("utterance of %.0f ms%s", utterance.speech_ms, "" if utterance.final else " (speculative)")
        return SpeechSegment(self._audio(utterance), turn, utterance.speech_ms)

    def _audio(self, utterance) -> np.ndarray:
        return utterance.audio if self.enhance is None else self.enhance(utterance.audio)  # the whole utterance
