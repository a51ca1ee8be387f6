"""Text to speech with ChatTTS (2noise; English and Chinese, 24 kHz): each sentence streamed while it is generated,
in one voice for the whole run (a random speaker drawn with a fixed seed).

ChatTTS (AGPL-3.0) needs torchaudio, which PyPI has only for older torch releases than this project's: it does not
install beside torch 2.13. Its weights come from the hub (2Noise/ChatTTS) or from a directory (--tts_model_name)."""
from __future__ import annotations

import logging

from TTS.base import TTSHandler, pcm_blocks, stream_blocks
from utils.errors import ConfigError, cannot_load
from utils.hub import model_directory
from utils.pipeline.messages import Sentence

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "2Noise/ChatTTS"
SAMPLE_RATE = 24000  # its Vocos vocoder's
INSTALL_HINT = (
    "ChatTTS is not installed: pip install ChatTTS (AGPL-3.0), with a torchaudio built for your torch "
    "(PyPI has none for torch 2.13: use torch<=2.11 in its own environment)"
)


def chat_tts_module():
    try:
        import ChatTTS
    except ImportError as e:
        raise ConfigError(f"{INSTALL_HINT} (missing: {e.name or e})") from e
    return ChatTTS


class ChatTTSHandler(TTSHandler):
    def setup(self, config, model=None) -> None:
        """`model`, for tests: an object with ChatTTS.Chat's interface, loaded."""
        self.config = config
        self.model = model if model is not None else self.load(config.model_name or DEFAULT_MODEL)
        options = {k: v for k, v in config.gen_kwargs.items() if v is not None}
        self.params = self.model.InferCodeParams(spk_emb=self.speaker(config.speaker_seed), show_tqdm=False, **options)
        self.warmup()

    def load(self, name: str):
        chat = chat_tts_module().Chat(logger)
        folder = model_directory(name, "ChatTTS model", "--tts_model_name")
        try:
            loaded = chat.load(source="custom", custom_path=folder, device=self.config.device, compile=False)
        except Exception as e:  # a bad device, unreadable weights
            raise cannot_load("the ChatTTS model", folder, e) from e
        if not loaded:
            raise ConfigError(f"cannot load the ChatTTS model '{folder}': files missing or corrupt (it needs the asset/ "
                              f"and config/ folders of {DEFAULT_MODEL})")
        return chat

    def speaker(self, seed: int) -> str:
        """ChatTTS draws a random voice: drawn from a seeded generator it is the same on every start."""
        import torch

        with torch.random.fork_rng(devices=[]):  # the global generator's state stays as it was
            torch.manual_seed(seed)
            return self.model.sample_random_speaker()

    def warmup(self) -> None:
        for _ in self.speak(Sentence("Ready.", None, None)):
            pass

    def speak(self, sentence: Sentence):
        refine = self.config.refine_text
        if not self.config.stream:
            [audio] = self.model.infer(sentence.text, skip_refine_text=not refine, params_infer_code=self.params)
            yield from pcm_blocks(audio, SAMPLE_RATE, self.config.blocksize)
            return
        # Each piece holds one row per text (one text here). ChatTTS generates only as its pieces are read: leaving
        # early (the listener left) stops it.
        pieces = self.model.infer(sentence.text, stream=True, skip_refine_text=not refine, params_infer_code=self.params)
        yield from stream_blocks((piece[0] for piece in pieces), SAMPLE_RATE, self.config.blocksize)
