"""numpy's BLAS on the calling thread only, in the voice pipeline and its client.

numpy's OpenBLAS splits a matrix product over worker threads, and a worker then spins for ~100 ms waiting for the
next one (OpenBLAS's THREAD_TIMEOUT) before it sleeps. In the server the products are small (the log-mel filters of
Whisper's and Smart Turn's features: ~3-6 ms on one thread, no faster on two), so each utterance left a core
spinning for nothing twice: after Whisper's features, while llama.cpp read the question, and after Smart Turn's,
while it wrote the first phrase and the voice spoke it (103 ms of CPU burnt in the 300 ms after one 8 s Smart Turn
window; with one thread, 0.1 ms). One 12-question conversation (socket mode, the bundled stack, 2 cores): the
question read in ~50 ms instead of ~70, the voice's first audio ~20 ms after the first phrase instead of ~40.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

# a limit the user set on purpose wins
_USER_LIMITS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "OMP_NUM_THREADS")


def blas_on_one_thread() -> None:
    """Limit numpy's BLAS (OpenBLAS, MKL, BLIS) to one thread for the rest of the process, unless an environment
    variable already sets its threads. llama.cpp's and CTranslate2's own threads are not BLAS and stay as set."""
    if any(os.environ.get(name) for name in _USER_LIMITS):
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        logger.warning(
            "threadpoolctl is not installed (pip install threadpoolctl): numpy's BLAS threads will spin "
            "beside the models after each feature extraction, ~50 ms later replies on 2 cores"
        )
        return
    threadpool_limits(limits=1, user_api="blas")
