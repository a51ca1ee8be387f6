"""Text to speech with Parler-TTS: a voice described in words, audio streamed while it is generated.

parler-tts 0.2.3 pins transformers==4.46.1 and cannot import with transformers 5: it runs from its own
venv (bash scripts/install_parler.sh, then .venv-parler/bin/python s2s_pipeline.py --tts parler)."""
from __future__ import annotations

import logging
import threading

from TTS.base import TTSHandler, stream_blocks
from TTS.voices import PARLER_SPEAKERS, parler_description, pick
from utils.dtypes import torch_dtype
from utils.errors import ConfigError, cannot_load, first_line
from utils.pipeline.messages import Sentence

# parler-tts logs every load's full sub-configs as warnings (and flash-attention advice on any machine):
# noise in a pipeline log. Its errors still show.
logging.getLogger("parler_tts").setLevel(logging.ERROR)

try:
    import torch
    from parler_tts import ParlerTTSForConditionalGeneration, ParlerTTSStreamer
    from transformers import AutoTokenizer, StoppingCriteria, StoppingCriteriaList
except ImportError as e:
    raise ConfigError(
        f"the parler backend cannot import parler-tts ({e.name or e}): it needs transformers==4.46.1, "
        "run bash scripts/install_parler.sh and start the pipeline with .venv-parler/bin/python"
    ) from e

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "parler-tts/parler-mini-v1-jenny"


def prompt_pad_length(n_tokens: int) -> int:
    """Compiled graphs are specialised on shapes: pad prompts to a few lengths (powers of two, at least 4)."""
    return max(4, 1 << max(0, n_tokens - 1).bit_length())


class StopWhenSet(StoppingCriteria):
    """Ends generation once any of `events` is set (the listener left mid-sentence, the pipeline stops)."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def __call__(self, input_ids, scores, **kwargs):
        stop = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class ParlerTTSHandler(TTSHandler):
    def setup(self, config, model=None) -> None:
        self.config = config
        self.device = config.device
        name = config.model_name or DEFAULT_MODEL
        try:
            self.model = ParlerTTSForConditionalGeneration.from_pretrained(name).to(self.device, torch_dtype(config.torch_dtype, "--tts_torch_dtype"))
            self.prompt_tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as e:
            raise cannot_load("the Parler model", name, e) from e
        self.description_tokenizer = self.load_description_tokenizer()
        self.sample_rate = self.model.config.sampling_rate  # the codec's: 44.1 kHz for DAC
        self.play_steps = max(1, int(self.model.audio_encoder.config.frame_rate * config.play_steps_s))
        self.gen_kwargs = {k: v for k, v in config.gen_kwargs.items() if v is not None}
        self.compiled = bool(config.compile_mode)
        if self.compiled:
            if config.compile_mode != "default":
                logger.warning("parler: compile mode '%s' captures CUDA graphs, which the streamer breaks; using 'default'", config.compile_mode)
            self.model.generation_config.cache_implementation = "static"
            self.model.forward = torch.compile(self.model.forward, mode="default", fullgraph=True)
        self.warmup()

    def load_description_tokenizer(self):
        """The text encoder's tokenizer reads the description; Parler checkpoints name it by hub id, which
        may not be reachable: the prompt tokenizer (the same T5 vocabulary in the English models) stands in."""
        source = self.model.config.text_encoder._name_or_path
        try:
            return AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as e:
            logger.warning("parler: cannot load the description tokenizer %r (%s); using the prompt tokenizer", source, first_line(e))
            return self.prompt_tokenizer

    def warmup(self) -> None:
        # With compilation, each padded prompt length compiles once now instead of during a reply.
        lengths = [2 ** i for i in range(2, self.config.max_prompt_pad_length)] if self.compiled else [None]
        for length in reversed(lengths):
            self.model.generate(**self.model_inputs("Ready.", self.description_for(None), pad_to=length))

    def description_for(self, language: str | None) -> str:
        if not self.config.use_default_speakers_list:
            return self.config.description
        speaker = pick(PARLER_SPEAKERS, language, self.config.language, "parler")
        return parler_description(self.config.description, speaker)

    def model_inputs(self, text: str, description: str, pad_to: int | None = None) -> dict:
        described = self.description_tokenizer(description, return_tensors="pt").to(self.device)
        padding = {"padding": "max_length", "max_length": pad_to} if pad_to else {}
        prompt = self.prompt_tokenizer(text, return_tensors="pt", **padding).to(self.device)
        return {
            "input_ids": described.input_ids,
            "attention_mask": described.attention_mask,
            "prompt_input_ids": prompt.input_ids,
            "prompt_attention_mask": prompt.attention_mask,
            **self.gen_kwargs,
        }

    def speak(self, sentence: Sentence):
        pad_to = prompt_pad_length(len(self.prompt_tokenizer(sentence.text).input_ids)) if self.compiled else None
        inputs = self.model_inputs(sentence.text, self.description_for(sentence.language), pad_to)
        streamer = ParlerTTSStreamer(self.model, device=self.device, play_steps=self.play_steps)
        stop = threading.Event()
        failures: list[Exception] = []

        def generate() -> None:
            try:
                self.model.generate(**inputs, streamer=streamer, stopping_criteria=StoppingCriteriaList([StopWhenSet(stop, self.stop_event)]))
            except Exception as e:  # noqa: BLE001 - re-raised in the handler's thread below
                failures.append(e)
                streamer.audio_queue.put(streamer.stop_signal)  # end the stream: the reader must not wait forever

        # The same seed for every sentence: the sampled voice stays the same through a reply.
        torch.manual_seed(0)
        thread = threading.Thread(target=generate, name="parler-generate", daemon=True)
        thread.start()
        try:
            yield from stream_blocks(streamer, self.sample_rate, self.config.blocksize)
        finally:
            stop.set()  # reached early when the conversation ended mid-sentence: stop generating
            thread.join()
        if failures:
            raise failures[0]
