"""What the STT backend tests share: an utterance of noise, a segment of it, a handler made from flags."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from arguments_classes.parsing import parse_arguments
from utils.pipeline.messages import Conversation, SpeechSegment, Turn

AUDIO = (0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32)  # 1.5 s


def segment(audio: np.ndarray = AUDIO, conversation: Conversation | None = None) -> SpeechSegment:
    return SpeechSegment(audio, Turn(conversation or Conversation(), speech_end=time.monotonic()))


def make_stt_handler(*flags, queue_in=None, queue_out=None, dropped=None):
    """The handler of the STT backend the flags choose (`--stt ...` among them), set up from them."""
    backend, config = parse_arguments(list(flags)).stt
    return backend.load_handler()(
        threading.Event(), queue_in, queue_out, setup_kwargs={"config": config}, on_turn_dropped=dropped
    )


def built_model(build, folder: str, **options):
    """A module-scoped fixture: the directory that `build(directory, **options)` fills with a tiny model."""

    @pytest.fixture(scope="module")
    def model_directory(tmp_path_factory):
        return build(tmp_path_factory.mktemp(folder), **options)

    return model_directory
