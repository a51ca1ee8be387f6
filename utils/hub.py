"""Find a transformers model by directory or hub name without hanging when the hub is unreachable."""
from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from utils.errors import ConfigError

PROBE_TIMEOUT_S = 3.0


def is_cached(name: str) -> bool:
    """True if the hub repo `name` has a config.json in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # a name that is not a valid repo id
        return False
    return isinstance(found, str)


def hub_reachable() -> bool:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def locate_pretrained(name: str, what: str, flag: str) -> dict:
    """from_pretrained's keyword arguments for `name`: a local directory, a cached hub repo (read offline when
    the hub does not answer), or a hub repo while the hub answers. Otherwise one line saying what to pass:
    from_pretrained alone retries for minutes when the hub is unreachable."""
    if os.path.isdir(os.path.expanduser(name)):
        return {"pretrained_model_name_or_path": os.path.expanduser(name)}
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_like_path:
        raise ConfigError(f"{what} directory not found: {name}")
    if hub_reachable():
        return {"pretrained_model_name_or_path": name}
    if is_cached(name):
        return {"pretrained_model_name_or_path": name, "local_files_only": True}
    raise ConfigError(
        f"{what} '{name}' is not a local directory nor in the Hugging Face cache, and the hub is unreachable: "
        f"pass {flag} <model directory>"
    )


def model_directory(name: str, what: str, flag: str) -> str:
    """A local directory holding the model's files, for loaders that read a directory and not a hub name: `name`
    itself, or the hub repo's snapshot (cached, or downloaded while the hub answers; one line otherwise)."""
    where = locate_pretrained(name, what, flag)
    path = where["pretrained_model_name_or_path"]
    if os.path.isdir(path):
        return path
    from huggingface_hub import snapshot_download

    return snapshot_download(path, local_files_only=where.get("local_files_only", False))
