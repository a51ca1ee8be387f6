"""Text-to-speech backends."""
from arguments_classes.hibari_tts_arguments import HibariTTSHandlerArguments
from arguments_classes.stage_arguments import TTSArguments
from utils.registry import Backend

BACKENDS = {
    "hibari": Backend("hibari", HibariTTSHandlerArguments, "TTS.hibari_handler:HibariTTSHandler", "tts_", "hibari-tts soxr", shared=TTSArguments),
}
