"""The reference speech-to-speech project's settings that have other names here, and what each means here.

The reference names a setting per backend (`mlx_lm_model_name`, `open_api_chat_size`, `melo_device`...) and its
generation options as transformers does (`lm_gen_max_new_tokens`); here each stage shares one set of settings
(`lm_model_name`, `chat_size`, `tts_device`, `lm_gen_max_tokens`). A per-backend name applies only when its backend is
chosen, as in the reference. Names with nothing to set here say what they would ask for (`agrees`): a value that
asks for what happens here anyway is accepted quietly, any other is reported as having no effect.

The reference settings whose names are ours too (`lm_model_name`, `stt_compile_mode`, `description`...) are not
listed: they are our own flags and mean the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from arguments_classes.validation import PositiveInt

Lookup = Callable[[str], Any]  # a setting's value by our name, after the reference names are applied


@dataclass(frozen=True)
class ReferenceName:
    ours: str | None = None  # the setting it sets here; None: nothing here to set
    backend: str | None = None  # a per-backend name: applies only when this backend is chosen
    kind: Any = None  # its type when `ours` is None (a mapped name takes the type and bounds of `ours`)
    agrees: Callable[[Any, Lookup], bool] | None = None  # with `ours` None: the value asks for what happens here anyway
    why: str = ""  # with `ours` None: why another value has no effect


def equals(expected) -> Callable[[Any, Lookup], bool]:
    return lambda value, _settings: value == expected


def samples_as(temperature: str) -> Callable[[Any, Lookup], bool]:
    """do_sample agrees with a temperature: here sampling is on exactly when the temperature is above 0."""
    return lambda value, settings: bool(value) == (settings(temperature) > 0)


TIMESTAMPS = "transcripts carry no timestamps here"
TASK = "this pipeline transcribes; it does not translate"
USER_ROLE = "the user's messages always have the role 'user' here"
SAMPLING = "sampling follows --lm_gen_temperature here: 0 is greedy, above 0 samples"

REFERENCE_NAMES: dict[str, ReferenceName] = {
    # speech to text, any backend
    "stt_gen_num_beams": ReferenceName("stt_gen_beam_size"),
    "stt_gen_return_timestamps": ReferenceName(kind=bool, agrees=equals(False), why=TIMESTAMPS),
    "stt_gen_task": ReferenceName(kind=str, agrees=equals("transcribe"), why=TASK),
    # faster-whisper
    "faster_whisper_stt_model_name": ReferenceName("stt_model_name", "faster-whisper"),
    "faster_whisper_stt_device": ReferenceName("stt_device", "faster-whisper"),
    "faster_whisper_stt_compute_type": ReferenceName("stt_compute_type", "faster-whisper"),
    "faster_whisper_stt_gen_beam_size": ReferenceName("stt_gen_beam_size", "faster-whisper"),
    "faster_whisper_stt_gen_language": ReferenceName("language", "faster-whisper"),
    "faster_whisper_stt_gen_max_new_tokens": ReferenceName(
        backend="faster-whisper", kind=PositiveInt, why="faster-whisper caps each transcript by its audio's length here"),
    "faster_whisper_stt_gen_return_timestamps": ReferenceName(
        backend="faster-whisper", kind=bool, agrees=equals(False), why=TIMESTAMPS),
    "faster_whisper_stt_gen_task": ReferenceName(backend="faster-whisper", kind=str, agrees=equals("transcribe"), why=TASK),
    # paraformer
    "paraformer_stt_model_name": ReferenceName("stt_model_name", "paraformer"),
    "paraformer_stt_device": ReferenceName("stt_device", "paraformer"),
    # language model, any backend
    "model_name": ReferenceName("lm_model_name"),
    "lm_gen_max_new_tokens": ReferenceName("lm_gen_max_tokens"),
    "lm_gen_do_sample": ReferenceName(kind=bool, agrees=samples_as("lm_gen_temperature"), why=SAMPLING),
    "user_role": ReferenceName(kind=str, agrees=equals("user"), why=USER_ROLE),
    # mlx-lm
    "mlx_lm_model_name": ReferenceName("lm_model_name", "mlx-lm"),
    "mlx_lm_device": ReferenceName(backend="mlx-lm", kind=str, why="MLX runs on its default device: the GPU on Apple silicon"),
    "mlx_lm_torch_dtype": ReferenceName(backend="mlx-lm", kind=str, why="mlx-lm keeps the checkpoint's own dtype"),
    "mlx_lm_user_role": ReferenceName(backend="mlx-lm", kind=str, agrees=equals("user"), why=USER_ROLE),
    "mlx_lm_init_chat_role": ReferenceName("init_chat_role", "mlx-lm"),
    "mlx_lm_init_chat_prompt": ReferenceName("init_chat_prompt", "mlx-lm"),
    "mlx_lm_gen_max_new_tokens": ReferenceName("lm_gen_max_tokens", "mlx-lm"),
    "mlx_lm_gen_temperature": ReferenceName("lm_gen_temperature", "mlx-lm"),
    "mlx_lm_gen_do_sample": ReferenceName(backend="mlx-lm", kind=bool, agrees=samples_as("lm_gen_temperature"), why=SAMPLING),
    "mlx_lm_chat_size": ReferenceName("chat_size", "mlx-lm"),
    # open_api
    "open_api_chat_size": ReferenceName("chat_size", "open_api"),
    "open_api_init_chat_prompt": ReferenceName("init_chat_prompt", "open_api"),
    "open_api_init_chat_role": ReferenceName("init_chat_role", "open_api"),
    "open_api_user_role": ReferenceName(backend="open_api", kind=str, agrees=equals("user"), why=USER_ROLE),
    "open_api_stream": ReferenceName(backend="open_api", kind=bool, agrees=equals(True), why="replies are always streamed here"),
    # melo
    "melo_device": ReferenceName("tts_device", "melo"),
    "melo_language": ReferenceName("tts_language", "melo"),
    "melo_speaker_to_id": ReferenceName(backend="melo", kind=str, why="the speaker follows each sentence's language here"),
    # chat-tts (the reference's chatTTS)
    "chat_tts_chunk_size": ReferenceName("tts_blocksize", "chat-tts"),
    "chat_tts_device": ReferenceName("tts_device", "chat-tts"),
    "chat_tts_stream": ReferenceName("tts_stream", "chat-tts"),
    # facebook-mms (the reference's facebookMMS)
    "facebook_mms_device": ReferenceName("tts_device", "facebook-mms"),
    "facebook_mms_torch_dtype": ReferenceName("tts_torch_dtype", "facebook-mms"),
}
