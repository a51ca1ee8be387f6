"""Models that ship inside PyPI wheels, found without importing their packages."""
from __future__ import annotations

import importlib.util
import os

from utils.errors import ConfigError


def package_file(package: str, relative: str, install_hint: str) -> str:
    """Path of `relative` inside the installed `package`; a ConfigError naming what to install if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"a bundled model is missing: {install_hint}")
    path = os.path.join(list(spec.submodule_search_locations)[0], relative)
    if not os.path.exists(path):
        raise ConfigError(f"a bundled model is missing ({path}): {install_hint}")
    return path
