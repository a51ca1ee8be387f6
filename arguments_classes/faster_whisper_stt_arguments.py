from dataclasses import dataclass, field

from arguments_classes.validation import NonNegativeFloat, NonNegativeInt


@dataclass
class FasterWhisperSTTHandlerArguments:
    """faster-whisper's own fields; model name, device, language, beam size and temperature are in STTArguments."""

    stt_compute_type: str = field(default="int8", metadata={"help": "CTranslate2 compute type: int8, int8_float16, float16, float32."})
    stt_cpu_threads: NonNegativeInt = field(
        default=1,
        metadata={"help": "CPU threads for Whisper. 1 on 2 cores: a 2.3 s question in its 7 s window transcribes in ~65 ms on "
                          "one thread against ~87 on two, whose second thread keeps waking an idle core, and the other "
                          "core stays with the rest of the pipeline. Raise it on a machine with more cores."},
    )
    stt_window_pad_s: NonNegativeFloat = field(
        default=7.0,
        metadata={"help": "Seconds of silence after each utterance instead of Whisper's padding to 30 s: fewer frames, "
                          "faster (see benchmarks/stt_window.py). 30 keeps Whisper's own window; --language auto always does."},
    )
