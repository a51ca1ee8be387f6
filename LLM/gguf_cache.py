"""A GGUF file as a transformers model directory, converted once and kept in a cache.

transformers reads GGUF (`from_pretrained(dir, gguf_file=name)`, needs the `gguf` package) but
dequantises every tensor on each load, and the dequantised model cannot be `save_pretrained` as it is
(it still carries its GGUF quantizer). We copy its weights into a plain model of the same config and save
that: later starts load safetensors. The same directory serves mlx-lm, which cannot read GGUF itself.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from utils.errors import ConfigError

logger = logging.getLogger(__name__)

CACHE_ROOT = Path(__file__).resolve().parent.parent / "cache" / "gguf"  # beside the program, git-ignored


def cache_dir_for(gguf_path: str, cache_root: Path = CACHE_ROOT) -> Path:
    """Keyed by the file's path, size and mtime: a replaced file gets a new conversion."""
    path = os.path.abspath(gguf_path)
    stat = os.stat(path)
    key = hashlib.sha1(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return Path(cache_root) / f"{Path(path).stem}-{key}"


def converted_model_dir(gguf_path: str, cache_root: Path = CACHE_ROOT) -> Path:
    """A directory with config, safetensors weights and tokenizer for `gguf_path`; converts on first use."""
    if not os.path.isfile(gguf_path):
        raise ConfigError(f"GGUF model file not found: {gguf_path}")
    target = cache_dir_for(gguf_path, cache_root)
    if (target / "config.json").is_file():
        return target
    started = time.monotonic()
    logger.info("converting %s for transformers (once; cached in %s)", os.path.basename(gguf_path), target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then renamed: a second process converting at the same time never sees half a model.
    scratch = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        _convert(gguf_path, scratch)
        try:
            os.rename(scratch, target)
        except OSError:  # another process finished first; its copy is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("converted in %.1f s", time.monotonic() - started)
    return target


def _convert(gguf_path: str, out_dir: Path) -> None:
    try:
        import gguf  # noqa: F401 - transformers needs it to read the file; say so up front
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise ConfigError(f"reading a GGUF model with transformers needs {e.name}: pip install gguf accelerate torch") from e
    folder, name = os.path.split(os.path.abspath(gguf_path))
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, OSError) as e:  # e.g. accelerate missing, or an architecture transformers cannot read
        raise ConfigError(f"cannot read GGUF model '{gguf_path}' with transformers: {e}") from e
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):  # no random initialisation: every weight is replaced just below
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), assign=True)
    plain.tie_weights()
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
