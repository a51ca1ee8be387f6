from dataclasses import dataclass, field
from typing import Annotated, Optional

from arguments_classes.validation import Fraction, NonNegativeInt, Only, PositiveFloat, Range
from utils.audio import SAMPLE_RATE


@dataclass
class VADHandlerArguments:
    thresh: Fraction = field(default=0.3, metadata={"help": "Speech probability above which a 32 ms window counts as speech."})
    sample_rate: Annotated[int, Only(SAMPLE_RATE, "the audio in and out is 16 kHz mono int16: resample it first")] = field(
        default=SAMPLE_RATE, metadata={"help": "Sample rate of the incoming audio: 16000 only (the protocol's, Silero's and Whisper's)."})
    min_silence_ms: NonNegativeInt = field(default=300, metadata={"help": "Silence that ends an utterance, in ms."})
    min_speech_ms: NonNegativeInt = field(default=500, metadata={"help": "Shorter utterances are skipped, in ms."})
    max_speech_ms: PositiveFloat = field(default=float("inf"), metadata={"help": "Longer utterances are skipped, in ms."})
    speech_pad_ms: NonNegativeInt = field(
        default=200,
        metadata={"help": "Audio kept before the start and after the end of speech, in ms. Silero decides speech has "
                          "started a window late: less than ~100 ms clips first words (WER 0.148 at 30 ms, 0.130 at 200)."},
    )
    speculative_silence_ms: NonNegativeInt = field(
        default=32,
        metadata={"help": "After this much silence, start transcribing and answering while waiting for the end of the "
                          "turn to be confirmed (Smart Turn at --end_of_turn_silence_ms, or --min_silence_ms of silence); "
                          "the reply is spoken only once confirmed and dropped if the user goes on. 0 turns it off. 32 "
                          "rather than 80 answered ~70 ms sooner (benchmarks/turns.py) for ~5 times as many answers "
                          "started and dropped mid-question (~3 per question), CPU spent while the user speaks."},
    )
    end_of_turn: str = field(
        default="smart-turn",
        metadata={"help": "How the end of the user's turn is decided. smart-turn: at the speculative silence, the Smart Turn "
                          "v3.2 model hears whether the turn sounds complete and the transcript says whether it ends a "
                          "sentence; both yes: the turn ends at once; else it waits up to --max_turn_silence_ms, so a pause "
                          "mid-sentence does not cut the user off. silence: --min_silence_ms of silence ends every turn."},
    )
    end_of_turn_silence_ms: Annotated[int, Range(0, 2500)] = field(
        default=150,
        metadata={"help": "With --end_of_turn smart-turn: the silence after which Smart Turn hears the utterance, in ms "
                          "(at least --speculative_silence_ms: the work may start earlier than the model listens, which "
                          "was tuned hearing this much)."},
    )
    end_of_turn_threshold: Fraction = field(
        default=0.98,
        metadata={"help": "Smart Turn probability at or above which a turn counts as complete. High because a cut-off "
                          "loses the question while a wait costs under a second: at 0.5, 14 of 24 unfinished questions "
                          "were heard as finished; the first parts still answered at 0.95 scored 0.95-0.974 "
                          "(benchmarks/turns.py). See --end_of_turn_sure_text_threshold for the exception."},
    )
    end_of_turn_text_threshold: Fraction = field(
        default=0.9,
        metadata={"help": "With --end_of_turn smart-turn: how sure Whisper must be that its transcript ends where it "
                          "stops (the probability of its last '?', '.' or '!', or of the text's end, against more words) "
                          "for the turn to end at once; below, it waits as an unfinished one. Whisper closes many "
                          "questions cut by a pause with a '?' ('Can you tell me?'), less surely (chosen on "
                          "benchmarks/turns.py's questions). 0 counts every sentence end."},
    )
    end_of_turn_sure_text_threshold: Fraction = field(
        default=0.99,
        metadata={"help": "With --end_of_turn smart-turn: Whisper at least this sure of its sentence end lets the turn "
                          "end at once with Smart Turn at 0.95 (or --end_of_turn_threshold, if lower). Finished "
                          "questions Smart Turn doubts (0.969-0.979) had 0.994-0.997; no first part of a paused "
                          "question reached 0.99 (benchmarks/turns.py). 1 turns the exception off."},
    )
    max_turn_silence_ms: Annotated[int, Range(0, 2500)] = field(
        default=1200,
        metadata={"help": "With --end_of_turn smart-turn: the silence after which an unfinished-sounding turn ends anyway, "
                          "in ms (at most 2500)."},
    )
    barge_in: bool = field(
        default=True,
        metadata={"help": "Let the user interrupt a reply by speaking over it, where the echo of the reply is cancelled: "
                          "local mode (with an echo canceller installed: pip install livekit), listen_and_play.py "
                          "--full_duplex clients and Realtime sessions (the browser cancels it). The sound stops at the "
                          "first sound of speech; speech that lasts --barge_in_min_ms cuts the reply, a shorter sound "
                          "lets it play on."},
    )
    half_duplex: bool = field(
        default=False,
        metadata={"help": "Never listen while a reply plays (as before barge-in): for a microphone whose echo is not "
                          "cancelled well. Wins over --barge_in."},
    )
    barge_in_min_ms: Annotated[int, Range(50, 3000)] = field(
        default=300,
        metadata={"help": "Where barge-in is on: speech over the reply that lasts this long, in ms, interrupts it; "
                          "shorter sounds (a cough, \"mm-hmm\") pause it and it plays on."},
    )
    echo_canceller: str = field(
        default="webrtc",
        metadata={"help": "Local mode's echo canceller for barge-in (utils/echo_cancel.py): webrtc (WebRTC AEC3, pip "
                          "install livekit), webrtc-apm, speex, speexdsp. Missing: one warning, half-duplex."},
    )
    end_of_turn_model_path: Optional[str] = field(
        default=None, metadata={"help": "Smart Turn ONNX file; default: the one inside the pipecat-ai package."})
    vad_model_path: Optional[str] = field(default=None, metadata={"help": "Silero ONNX file; default: the one inside the silero-vad package."})
    audio_enhancement: bool = field(
        default=False,
        metadata={"help": "Reduce noise in each utterance before speech-to-text: DeepFilterNet if its weights are on disk, else noisereduce (pip install noisereduce)."},
    )
