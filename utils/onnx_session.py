"""The small ONNX models beside the stages (Silero VAD, Smart Turn) run through plain onnxruntime: no torch."""

from __future__ import annotations

import os

from utils.errors import ConfigError, cannot_load


def cpu_session(path: str, threads: int, what: str):
    """An onnxruntime session on the CPU with `threads` threads and a quiet log; a missing or unreadable file is a
    one-line ConfigError naming `what` it is."""
    import onnxruntime

    if not os.path.isfile(path):
        raise ConfigError(f"{what} not found: {path}")
    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # a file that is not an ONNX model
        raise cannot_load(what, path, e) from None
