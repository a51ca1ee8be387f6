"""The bundled GGUF requantized once, by llama.cpp itself, to a type its CPU kernels run fast; kept in the cache.

SmolLM2 ships as Q4_1, a type llama.cpp's CPU back end does not repack into its fast interleaved layouts. On a
2-core AVX-512 machine (one thread decoding, as the pipeline runs it) the same weights as Q8_0 read a 31-token
prompt in 53 ms instead of 96 and decode 94 tokens/s instead of 76. Q8_0 holds every Q4_1 weight to within
1/254 of its block's largest (the 4-bit step is 1/15 of the block's range): the answers are the model's own,
give or take a rounding that may change a later word of a greedy answer. Q4_0 is faster still but
quantises a second time: it loses what Q4_1 kept, and is not used.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import tempfile
import time
from pathlib import Path

from LLM.gguf_cache import CACHE_ROOT, cache_dir_for

logger = logging.getLogger(__name__)

FAST_TYPE = "q8_0"


def requantized(gguf_path: str, cache_root: Path = CACHE_ROOT) -> str:
    """The path of `gguf_path` as Q8_0 in the cache, converted on first use (about a second); `gguf_path`
    itself, after one warning, if that cannot be done (a read-only cache, a llama.cpp that refuses)."""
    target = Path(str(cache_dir_for(gguf_path, cache_root)) + f".{FAST_TYPE}.gguf")
    if target.is_file():
        return str(target)
    started = time.monotonic()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: a second server starting at the same time never reads half a file.
        fd, scratch = tempfile.mkstemp(prefix=".requantizing-", suffix=".gguf", dir=target.parent)
        os.close(fd)
        try:
            _quantize(gguf_path, scratch)
            os.replace(scratch, target)
        finally:
            if os.path.exists(scratch):
                os.unlink(scratch)
    except (OSError, RuntimeError) as e:
        logger.warning("could not requantize %s to %s (%s): running it as it is, slower", gguf_path, FAST_TYPE, e)
        return gguf_path
    logger.info("requantized %s to %s once in %.1f s (cached in %s)", os.path.basename(gguf_path), FAST_TYPE,
                time.monotonic() - started, target)
    return str(target)


def _quantize(source: str, destination: str) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    # llama.cpp reports every tensor through llama-cpp-python's log callback, which prints to sys.stderr
    with contextlib.redirect_stderr(io.StringIO()) as report:
        failed = llama_cpp.llama_model_quantize(source.encode(), destination.encode(), ctypes.byref(params)) != 0
    if failed:
        raise RuntimeError("llama_model_quantize failed: " + " ".join(report.getvalue().split()[-30:]))
    os.chmod(destination, 0o644)  # (mkstemp made it private)
