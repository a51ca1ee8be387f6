"""Command line / JSON -> one clean, frozen config per component.

HfArgumentParser reads one dataclass per component; each value is then checked against its field's type and
bounds (validation.py). Prefixes (`stt_`, `lm_`, `tts_`) are stripped here, once, and `<prefix>gen_<name>`
fields are gathered into that component's `gen_kwargs`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, make_dataclass, replace
from typing import Any

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "PyTorch was not found" banner on a torch-less install
from transformers import HfArgumentParser  # noqa: E402

import LLM  # noqa: E402
import STT  # noqa: E402
import TTS  # noqa: E402
from arguments_classes.local_audio_arguments import LocalAudioArguments  # noqa: E402
from arguments_classes.module_arguments import ModuleArguments  # noqa: E402
from arguments_classes.socket_arguments import SocketReceiverArguments, SocketSenderArguments  # noqa: E402
from arguments_classes.validation import checked  # noqa: E402
from arguments_classes.vad_arguments import VADHandlerArguments  # noqa: E402
from utils.errors import ConfigError  # noqa: E402
from utils.registry import Backend, choose  # noqa: E402

STAGES = {"stt": STT.BACKENDS, "llm": LLM.BACKENDS, "tts": TTS.BACKENDS}
BASE_CLASSES = [ModuleArguments, SocketReceiverArguments, SocketSenderArguments, LocalAudioArguments, VADHandlerArguments]

MAC_SETTINGS = {"device": "mps", "mode": "local", "stt": "moonshine", "llm": "mlx-lm", "tts": "melo"}


def argument_classes() -> list[type]:
    backend_classes = [c for registry in STAGES.values() for b in registry.values() for c in (b.shared, b.arguments) if c]
    return BASE_CLASSES + list(dict.fromkeys(backend_classes))


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline needs, after parsing; each component's config is frozen."""

    module: Any
    receiver: Any
    sender: Any
    local: Any
    vad: Any
    stt: tuple[Backend, Any]
    llm: tuple[Backend, Any]
    tts: tuple[Backend, Any]


def parse_arguments(argv: list[str]) -> PipelineConfig:
    parser = HfArgumentParser(argument_classes())
    if len(argv) == 1 and argv[0].endswith(".json"):
        parsed, explicit = _parse_json(parser, argv[0])
        source = f"config file {argv[0]}"
    else:
        parsed = parser.parse_args_into_dataclasses(args=argv)
        explicit = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
        source = None
    return build_config([checked(obj, source) for obj in parsed], explicit)


def _parse_json(parser: HfArgumentParser, path: str):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of flag names to values")
    try:
        parsed = parser.parse_dict(data, allow_extra_keys=False)
    except ValueError as e:
        raise ConfigError(f"config file {path}: {e}") from None
    return parsed, set(data)


def build_config(parsed, explicit: set[str]) -> PipelineConfig:
    by_class = {type(obj): obj for obj in parsed}
    module = by_class[ModuleArguments]
    if module.local_mac_optimal_settings:
        module = replace(module, **{k: v for k, v in MAC_SETTINGS.items() if k not in explicit})
    if module.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"unknown --log_level '{module.log_level}'; choose debug, info, warning or error")
    if module.mode not in ("socket", "local"):
        raise ConfigError(f"unknown --mode '{module.mode}'; choose socket or local")

    stages = {}
    for stage, registry in STAGES.items():
        backend = choose(registry, getattr(module, stage), f"--{stage}")
        args = [by_class[c] for c in (backend.shared, backend.arguments) if c]
        stages[stage] = (backend, component_config(*args, prefix=backend.prefix, device=module.device, explicit=explicit))
    return PipelineConfig(
        module=module,
        receiver=component_config(by_class[SocketReceiverArguments]),
        sender=component_config(by_class[SocketSenderArguments]),
        local=component_config(by_class[LocalAudioArguments], prefix="local_"),
        vad=component_config(by_class[VADHandlerArguments]),
        **stages,
    )


_config_classes: dict[tuple[type, ...], type] = {}


def component_config(*args, prefix: str = "", device: str | None = None, explicit: set[str] = frozenset()):
    """One frozen config from one or more parsed dataclasses: `prefix` stripped, gen fields gathered into
    `gen_kwargs`, and the global --device applied where the component's own device flag was not given."""
    values: dict[str, Any] = {}
    gen_kwargs: dict[str, Any] = {}
    for obj in args:
        for f in fields(obj):
            value = getattr(obj, f.name)
            if f.name == f"{prefix}device" and device is not None and f.name not in explicit:
                value = device
            short = f.name[len(prefix):] if prefix and f.name.startswith(prefix) else f.name
            if short.startswith("gen_"):
                gen_kwargs[short[4:]] = value
            else:
                values[short] = value
    key = tuple(type(obj) for obj in args)
    if key not in _config_classes:
        name = type(args[-1]).__name__.replace("Arguments", "Config")
        _config_classes[key] = make_dataclass(name, [*values, "gen_kwargs"], frozen=True)
    return _config_classes[key](**values, gen_kwargs=gen_kwargs)
