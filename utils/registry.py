"""Backend registries: name -> CLI arguments class and a lazily imported handler."""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from utils.errors import ConfigError


@dataclass(frozen=True)
class Backend:
    name: str
    arguments: type  # the CLI dataclass that HfArgumentParser reads
    handler: str  # "package.module:ClassName", imported only when chosen
    prefix: str  # CLI prefix stripped from this backend's fields ("stt_", "lm_", "tts_")
    install_hint: str  # what to pip install when the import fails
    shared: type | None = None  # the stage's common CLI dataclass (model name, device...), merged into the config

    def load_handler(self) -> type:
        module_name, class_name = self.handler.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ConfigError(
                f"backend '{self.name}' needs a package that is not installed ({e.name or e}): pip install {self.install_hint}"
            ) from e
        return getattr(module, class_name)


def choose(registry: dict[str, Backend], name: str, flag: str) -> Backend:
    try:
        return registry[name]
    except KeyError:
        raise ConfigError(f"unknown {flag} backend '{name}'; choose one of: {', '.join(sorted(registry))}") from None
