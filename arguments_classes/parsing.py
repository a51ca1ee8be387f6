"""Command line / JSON -> one clean, frozen config per component.

The settings come from flags, from a JSON file of flag names to values (a preset), or from both: the file first,
then flags that override its values. HfArgumentParser reads one dataclass per component; each value is then checked against its field's type and
bounds (validation.py). The reference project's names are accepted and moved onto ours (reference_flags.py).
Prefixes (`stt_`, `lm_`, `tts_`) are stripped here, once, and `<prefix>gen_<name>` fields are gathered into that
component's `gen_kwargs`.
"""
from __future__ import annotations

import difflib
import json
import logging
import os
from dataclasses import dataclass, fields, make_dataclass, replace
from typing import AbstractSet, Any, Callable

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "PyTorch was not found" banner on a torch-less install
from transformers import HfArgumentParser  # noqa: E402

import LLM  # noqa: E402
import STT  # noqa: E402
import TTS  # noqa: E402
from arguments_classes.local_audio_arguments import LocalAudioArguments  # noqa: E402
from arguments_classes.module_arguments import ModuleArguments  # noqa: E402
from arguments_classes.realtime_arguments import RealtimeArguments  # noqa: E402
from arguments_classes.reference_flags import reference_arguments, translate  # noqa: E402
from arguments_classes.reference_names import REFERENCE_NAMES  # noqa: E402
from arguments_classes.socket_arguments import SocketReceiverArguments, SocketSenderArguments  # noqa: E402
from arguments_classes.vad_arguments import VADHandlerArguments  # noqa: E402
from arguments_classes.validation import checked  # noqa: E402
from utils.errors import ConfigError  # noqa: E402
from utils.logging_setup import setup_logging  # noqa: E402
from utils.pipeline.registry import Backend, choose  # noqa: E402

logger = logging.getLogger(__name__)

STAGES = {"stt": STT.BACKENDS, "llm": LLM.BACKENDS, "tts": TTS.BACKENDS}
BASE_CLASSES = [ModuleArguments, SocketReceiverArguments, SocketSenderArguments, RealtimeArguments, LocalAudioArguments,
                VADHandlerArguments]

# hibari, not the reference's melo: MeloTTS does not install from PyPI, hibari installs everywhere and runs offline.
MAC_SETTINGS = {"device": "mps", "mode": "local", "stt": "moonshine", "llm": "mlx-lm", "tts": "hibari"}

# The one key of a JSON config that is not a setting: a description of the file (a string or a list of lines),
# skipped by the parser. JSON has no comments.
COMMENT_KEY = "_comment"

USAGE = "%(prog)s [config.json] [--flag value ...]"
DESCRIPTION = ("Settings come from these flags, or from a JSON file of flag names to values given first (a preset: "
               "presets/*.json); flags after the file override its values, e.g. "
               "python3 s2s_pipeline.py presets/cpu-offline.json --recv_port 23456. README.md, 'Presets', lists them.")
EPILOG = ("The flags of the reference speech-to-speech project (--lm_gen_max_new_tokens, --mlx_lm_model_name, "
          "--open_api_chat_size, --chat_tts_device...) are accepted too and set the settings above: README.md, "
          "'Reference flags', maps each one.")


def classes_of(backend: Backend) -> list[type]:
    return [c for c in (backend.shared, backend.arguments) if c]


def our_classes() -> list[type]:
    backend_classes = [c for registry in STAGES.values() for b in registry.values() for c in classes_of(b)]
    return BASE_CLASSES + list(dict.fromkeys(backend_classes))


ReferenceArguments = reference_arguments(our_classes())
# The stage a reference per-backend name belongs to. open_api serves every stage here, but the reference's
# open_api (open_api_chat_size...) is its language model.
STAGE_OF_BACKEND = {**{name: stage for stage, registry in STAGES.items() for name in registry}, "open_api": "llm"}


def argument_classes() -> list[Any]:  # dataclasses (HfArgumentParser's DataClassType)
    return our_classes() + [ReferenceArguments]


class Parser(HfArgumentParser):
    """HfArgumentParser whose mistakes (a missing value, an int that is not one) are one line, not a usage dump."""

    def error(self, message: str):
        raise ConfigError(message)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline needs, after parsing; each component's config is frozen."""

    module: Any
    receiver: Any
    sender: Any
    realtime: Any
    local: Any
    vad: Any
    stt: tuple[Backend, Any]
    llm: tuple[Backend, Any]
    tts: tuple[Backend, Any]


def flag(name: str) -> str:
    return f"--{name}"


def flag_as_typed(name: str) -> str:
    return name if name.startswith("-") else flag(name)


def json_key(name: str) -> str:
    return f'"{name}"'


def parse_arguments(argv: list[str]) -> PipelineConfig:
    """`argv`: flags, or a JSON config file then flags that override its values."""
    # Abbreviations off: a shortened or mistyped flag must not silently set a neighbouring one.
    parser = Parser(argument_classes(), allow_abbrev=False, usage=USAGE, description=DESCRIPTION, epilog=EPILOG)
    path, flags = (argv[0], argv[1:]) if argv and argv[0].endswith(".json") else (None, argv)
    from_flags, given = _parse_flags(parser, flags)
    from_flags = [checked(obj) for obj in from_flags]
    if path is None:
        return build_config(from_flags, given, flag)
    data = _read_json(path)
    from_file = [checked(obj, f"config file {path}") for obj in parser.parse_dict(data, allow_extra_keys=False)]
    # the file's values, then each flag's on top; a name is shown as the user wrote it: --flag or "key"
    merged = [replace(file_obj, **{f.name: getattr(flag_obj, f.name) for f in fields(flag_obj) if f.name in given})
              for file_obj, flag_obj in zip(from_file, from_flags)]
    return build_config(merged, set(data) | given, lambda name: flag(name) if name in given else json_key(name),
                        set(data) - given)


def _parse_flags(parser: Parser, argv: list[str]):
    *parsed, remaining = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    dests = {option: action.dest for action in parser._actions for option in action.option_strings}
    if remaining:
        names = [o for o, dest in dests.items() if o == f"--{dest}"]  # not --the-hyphenated-one, --no_<flag>, aliases
        raise ConfigError(unknown("flag", [a.split("=")[0] for a in remaining if a.startswith("-")], names, flag_as_typed)
                          or f"unexpected argument '{remaining[0]}' (a JSON config file comes first, before any flag)")
    return parsed, {dests[a.split("=")[0]] for a in argv if a.split("=")[0] in dests}


def _read_json(path: str) -> dict[str, Any]:
    """The settings of a JSON config file, checked to be known names; its COMMENT_KEY dropped."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of flag names to values")
    comment = data.pop(COMMENT_KEY, "")
    if not (isinstance(comment, str) or isinstance(comment, list) and all(isinstance(line, str) for line in comment)):
        raise ConfigError(f'config file {path}: {json_key(COMMENT_KEY)} must be a string or a list of strings')
    names = [f.name for cls in argument_classes() for f in fields(cls)]
    problem = unknown("key", [k for k in data if k not in names], names, json_key)
    if problem:
        raise ConfigError(f"config file {path}: {problem}")
    return data


def unknown(what: str, given: list[str], known: list[str], show: Callable[[str], str]) -> str | None:
    """One line naming each unknown flag or key and the closest known one."""
    if not given:
        return None
    described = []
    for name in given:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        described.append(show(name) + (f" (did you mean {show(close[0])}?)" if close else ""))
    lists = "python s2s_pipeline.py --help lists the flags" if what == "flag" else "the keys are the flags' names"
    return f"unknown {what}{'s' if len(given) > 1 else ''}: {', '.join(described)}; {lists}"


def check_choice(flag: str, value: str, choices: tuple[str, ...], shown: str | None = None) -> None:
    """One readable line when a flag's value is none of its choices (`shown`: the value as the user wrote it)."""
    if value not in choices:
        listed = choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"
        raise ConfigError(f"unknown {flag} '{value if shown is None else shown}'; choose {listed}")


def build_config(parsed, explicit: set[str], show: Callable[[str], str] = flag,
                 from_file: AbstractSet[str] = frozenset()) -> PipelineConfig:
    """`explicit`: the names given (in a file or as flags); `from_file`: those given in a config file only, which
    lose to a flag that sets the same setting under another name (a reference name for it, or ours for theirs)."""
    by_class = {type(obj): obj for obj in parsed}
    module = by_class[ModuleArguments]
    if module.local_mac_optimal_settings:
        module = replace(module, **{k: v for k, v in MAC_SETTINGS.items() if k not in explicit})
    check_choice("--log_level", module.log_level.lower(), ("debug", "info", "warning", "error"), module.log_level)
    check_choice("--mode", module.mode, ("socket", "local"))

    backends = {stage: choose(registry, getattr(module, stage), f"--{stage}") for stage, registry in STAGES.items()}
    explicit = explicit - overridden(from_file, explicit - from_file, backends)
    by_class, explicit = apply_reference_names(by_class, explicit, backends, show, module.log_level)
    stages = {
        stage: (backend, component_config(*[by_class[c] for c in classes_of(backend)], prefix=backend.prefix,
                                          device=module.device, explicit=explicit))
        for stage, backend in backends.items()
    }
    check_choice("--history_format", getattr(stages["llm"][1], "history_format", "system"), ("system", "messages"))
    check_choice("--end_of_turn", by_class[VADHandlerArguments].end_of_turn, ("smart-turn", "silence"))
    check_choice("--local_latency", by_class[LocalAudioArguments].local_latency, ("low", "high"))
    from utils.echo_cancel import BACKENDS as ECHO_CANCELLERS

    check_choice("--echo_canceller", by_class[VADHandlerArguments].echo_canceller, tuple(ECHO_CANCELLERS))
    return PipelineConfig(
        module=module,
        receiver=component_config(by_class[SocketReceiverArguments]),
        sender=component_config(by_class[SocketSenderArguments]),
        realtime=_realtime_config(by_class[RealtimeArguments]),
        local=component_config(by_class[LocalAudioArguments], prefix="local_"),
        vad=component_config(by_class[VADHandlerArguments]),
        **stages,
    )


def _realtime_config(args: RealtimeArguments):
    """Refuses an endpoint open to the network without a key: anyone who reaches the port would talk to it."""
    from utils.network import is_loopback

    if args.realtime_port and not args.realtime_api_key and not is_loopback(args.realtime_host):
        raise ConfigError(f"--realtime_host {args.realtime_host} opens the Realtime endpoint to the network: give "
                          "--realtime_api_key KEY too (clients send it as Authorization: Bearer KEY), or --realtime_port 0")
    return component_config(args)


def overridden(from_file: AbstractSet[str], from_flags: set[str], backends: dict[str, Backend]) -> set[str]:
    """The file's names whose setting a flag sets too: the flag wins, so they count as not given."""
    chosen = {stage: backend.name for stage, backend in backends.items()}

    def setting(name: str) -> str | None:
        ref = REFERENCE_NAMES.get(name)
        if ref is None:
            return name
        if ref.backend is not None and chosen.get(STAGE_OF_BACKEND.get(ref.backend, "")) != ref.backend:
            return None  # a per-backend name of a backend not chosen sets nothing
        return ref.ours or name

    set_by_flags = {setting(name) for name in from_flags} - {None}
    return {name for name in from_file if setting(name) in set_by_flags}


def apply_reference_names(by_class: dict, explicit: set[str], backends: dict[str, Backend], show, log_level: str):
    """The reference names' values moved onto our settings (new objects: the parsed ones are not mutated); what
    was given but has no effect with the chosen backends is said in one warning line."""
    settings = {f.name: getattr(obj, f.name) for obj in by_class.values() for f in fields(obj)}
    chosen = {stage: backend.name for stage, backend in backends.items()}
    updates, warnings, no_effect = translate(settings, explicit, chosen, STAGE_OF_BACKEND, show)
    no_effect += unread(explicit, backends, show)
    if no_effect:
        reasons = {why: [n for n, w in no_effect if w == why] for _, why in no_effect}  # one entry per reason, in order
        warnings.append("no effect with the chosen backends: " + "; ".join(f"{', '.join(n)} ({why})" for why, n in reasons.items()))
    if warnings and not logging.getLogger().handlers:
        setup_logging(log_level)  # these come before main() sets logging up: the same call, so they read like the log
    for line in warnings:
        logger.warning(line)
    by_class = {cls: replace(obj, **{f.name: updates[f.name] for f in fields(obj) if f.name in updates})
                for cls, obj in by_class.items()}
    return by_class, explicit | set(updates)


def unread(explicit: set[str], backends: dict[str, Backend], show) -> list[tuple[str, str]]:
    """(name, why) of our settings that were given but belong only to backends other than their stage's chosen one,
    or that the chosen one ignores (Backend.ignores)."""
    owner = {f.name: cls for cls in our_classes() for f in fields(cls)}
    notes = []
    for stage, registry in STAGES.items():
        stage_classes = {c for backend in registry.values() for c in classes_of(backend)}
        chosen = backends[stage]
        notes += [(show(name), f"not read by --{stage} {chosen.name}") for name in sorted(explicit)
                  if owner.get(name) in stage_classes and owner[name] not in classes_of(chosen) or name in chosen.ignores]
    return notes


_config_classes: dict[tuple[type, ...], type] = {}


def component_config(*args, prefix: str = "", device: str | None = None, explicit: AbstractSet[str] = frozenset()):
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
