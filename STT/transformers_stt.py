"""What the transformers STT backends share: loading by directory or hub name, device, dtype and generation
options (STT.base owns the SpeechSegment -> Transcript step). Subclasses write `transcribe(audio) -> (text, language)`."""
from __future__ import annotations

import logging

import numpy as np
import torch

from STT.base import STTHandler
from utils.audio import SAMPLE_RATE
from utils.dtypes import torch_dtype
from utils.errors import cannot_load
from utils.hub import locate_pretrained

logger = logging.getLogger(__name__)



def resolve_device(name: str) -> str:
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    return "mps" if torch.backends.mps.is_available() else "cpu"


def resolve_dtype(name: str, device: str) -> torch.dtype:
    # auto: half precision on a GPU only (it is slow or unsupported for many CPU kernels)
    return torch_dtype(name, "--stt_torch_dtype", auto=torch.float16 if device.startswith(("cuda", "mps")) else torch.float32)


def generate_kwargs(gen_kwargs: dict) -> dict:
    """The stage's option names (faster-whisper's: beam_size, temperature) -> generate()'s."""
    kwargs = dict(gen_kwargs)
    kwargs["num_beams"] = kwargs.pop("beam_size", 1)
    temperature = kwargs.pop("temperature", 0.0)
    if temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature)
    return kwargs


class TransformersSTTHandler(STTHandler):
    """SpeechSegment in, Transcript out. `model` and `processor` may be given ready (tests)."""

    default_model = ""
    what = "STT model"
    warmup_runs = 1

    def setup(self, config, model=None, processor=None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.torch_dtype, self.device)
        self.check_config(config)
        if model is None or processor is None:
            model, processor = self.load(config.model_name or self.default_model)
        self.model = model.to(self.device, self.dtype).eval()
        self.processor = processor
        self.gen_kwargs = generate_kwargs(config.gen_kwargs)
        self.prepare()
        self.warmup()

    def check_config(self, config) -> None:
        """Reject settings this backend cannot honour, before loading anything."""

    def prepare(self) -> None:
        """Backend set-up once the model is loaded (languages, compilation)."""

    def load(self, name: str):
        from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

        kwargs = locate_pretrained(name, self.what, "--stt_model_name")
        try:
            processor = AutoProcessor.from_pretrained(**kwargs)
            model = AutoModelForSpeechSeq2Seq.from_pretrained(**kwargs, dtype=self.dtype)
        except Exception as e:  # missing files, a directory of another model type, hub errors
            raise cannot_load(self.what, name, e) from e
        return model, processor

    def warmup(self) -> None:
        """The first calls allocate buffers (and compile, with --stt_compile_mode): pay at start-up."""
        for _ in range(self.warmup_runs):
            self.recognize(np.zeros(SAMPLE_RATE, dtype=np.float32))

    def recognize(self, audio: np.ndarray) -> tuple[str, str | None]:
        # inference_mode in warm-up too: tensors made outside it fail torch.compile's guards (a recompile per turn)
        with torch.inference_mode():
            return self.transcribe(audio)

    def transcribe(self, audio: np.ndarray) -> tuple[str, str | None]:
        raise NotImplementedError

    def decode(self, ids) -> str:
        return self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()
