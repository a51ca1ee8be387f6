"""Where torch.compile keeps its kernels: beside the program, so a restart reuses them."""
from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE_DIR = os.path.join(REPO_ROOT, "cache", "torchinductor")


def use_repo_compile_cache() -> str:
    """Point TORCHINDUCTOR_CACHE_DIR at <repo>/cache/torchinductor unless the user chose a directory.
    Call before the first torch.compile: inductor reads the variable when it first compiles."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", DEFAULT_CACHE_DIR)
    path = os.environ["TORCHINDUCTOR_CACHE_DIR"]
    os.makedirs(path, exist_ok=True)
    logger.debug("torch.compile cache: %s", path)
    return path
