"""Backend registries: name -> CLI arguments class and a lazily imported handler."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

from utils.errors import ConfigError


@dataclass(frozen=True)
class Backend:
    name: str
    arguments: type | None  # the CLI dataclass that HfArgumentParser reads; None: the stage's shared fields suffice
    handler: str  # "package.module:ClassName", imported only when chosen
    prefix: str  # CLI prefix stripped from this backend's fields ("stt_", "lm_", "tts_")
    install_hint: str  # what to pip install when the import fails
    shared: type | None = None  # the stage's common CLI dataclass (model name, device...), merged into the config
    aliases: tuple[str, ...] = ()  # other names it answers to (the reference project's spellings)
    # Settings of the stage's shared class that this backend does not read: when given, the start-up warning names
    # them (hibari has one voice and runs on the CPU: --tts_language and --tts_device do nothing there).
    ignores: tuple[str, ...] = ()

    def load_handler(self) -> type:
        module_name, class_name = self.handler.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ConfigError(
                f"backend '{self.name}' needs a package that is not installed ({e.name or e}): pip install {self.install_hint}"
            ) from e
        return getattr(module, class_name)


def spelling(name: str) -> str:
    """What two spellings of one backend share: 'chatTTS', 'chat-tts' and 'chat_tts' all give 'chattts'."""
    return name.lower().replace("-", "").replace("_", "")


def choose(registry: dict[str, Backend], name: str, flag: str) -> Backend:
    """The backend called `name` (by its name, an alias, or either spelled with other case or separators)."""
    for backend in registry.values():
        if spelling(name) in {spelling(n) for n in (backend.name, *backend.aliases)}:
            return backend
    spelled = {spelling(n): n for n in registry}
    close = difflib.get_close_matches(spelling(name), list(spelled), n=1)
    hint = f"did you mean '{spelled[close[0]]}'? " if close else ""
    raise ConfigError(f"unknown {flag} backend '{name}'; {hint}choose one of: {', '.join(sorted(registry))}")
