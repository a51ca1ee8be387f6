"""Text-to-speech backends."""
from arguments_classes.chat_tts_arguments import ChatTTSHandlerArguments
from arguments_classes.facebook_mms_tts_arguments import FacebookMMSTTSHandlerArguments
from arguments_classes.hibari_tts_arguments import HibariTTSHandlerArguments
from arguments_classes.melo_tts_arguments import MeloTTSHandlerArguments
from arguments_classes.open_api_tts_arguments import OpenApiTTSHandlerArguments
from arguments_classes.parler_tts_arguments import ParlerTTSHandlerArguments
from arguments_classes.stage_arguments import TTSArguments
from utils.pipeline.registry import Backend

# What each backend leaves of TTSArguments: named in the start-up warning when given (Backend.ignores).
ONE_VOICE = ("tts_device", "tts_language", "tts_torch_dtype")  # hibari, open_api: --tts_voice picks the voice
NAMED_VOICE = ("tts_voice", "tts_speed")  # only hibari and open_api have a named voice and a speaking rate

BACKENDS = {
    "hibari": Backend("hibari", HibariTTSHandlerArguments, "TTS.hibari_handler:HibariTTSHandler", "tts_", "hibari-tts soxr",
                      shared=TTSArguments, ignores=ONE_VOICE),
    "parler": Backend(
        "parler", ParlerTTSHandlerArguments, "TTS.parler_handler:ParlerTTSHandler", "tts_",
        "-r requirements-parler.txt in its own venv: bash scripts/install_parler.sh", shared=TTSArguments,
        ignores=NAMED_VOICE,
    ),
    "melo": Backend(
        "melo", MeloTTSHandlerArguments, "TTS.melo_handler:MeloTTSHandler", "tts_",
        "MeloTTS from its source repository myshell-ai/MeloTTS (PyPI's melotts does not build)", shared=TTSArguments,
        ignores=("tts_torch_dtype", *NAMED_VOICE),
    ),
    "facebook-mms": Backend(
        "facebook-mms", FacebookMMSTTSHandlerArguments, "TTS.facebook_mms_handler:FacebookMMSTTSHandler", "tts_",
        "torch==2.13.0 transformers soxr", shared=TTSArguments, aliases=("facebookMMS",), ignores=NAMED_VOICE,
    ),
    "chat-tts": Backend(
        "chat-tts", ChatTTSHandlerArguments, "TTS.chat_tts_handler:ChatTTSHandler", "tts_",
        "ChatTTS soxr (AGPL-3.0; it needs torchaudio, which PyPI has for torch <= 2.11 only)", shared=TTSArguments,
        aliases=("chatTTS",), ignores=("tts_language", "tts_torch_dtype", *NAMED_VOICE),
    ),
    "open_api": Backend(
        "open_api", OpenApiTTSHandlerArguments, "TTS.open_api_handler:OpenApiTTSHandler", "tts_", "openai soxr",
        shared=TTSArguments, ignores=ONE_VOICE,
    ),
}
