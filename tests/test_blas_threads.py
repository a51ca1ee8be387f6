"""numpy's BLAS runs on one thread in the server: no worker left spinning beside the models after a product."""

import subprocess
import sys
import types
from pathlib import Path

from tests.fake_server import FakeServer
from tests.fakes import FakeWhisper
from utils import blas_threads

# In a fresh process: a product the size of Smart Turn's mel filters, then the CPU the process burns while the
# calling thread sleeps (OpenBLAS's workers spun ~100 ms of it on 2 cores without the limit).
PROBE = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np
from threadpoolctl import threadpool_info
from utils.blas_threads import blas_on_one_thread
blas_on_one_thread()
a, b = np.random.rand(80, 201).astype(np.float32), np.random.rand(201, 801).astype(np.float32)
burnt = []
for _ in range(3):
    a @ b
    before = time.process_time()
    time.sleep(0.3)
    burnt.append(time.process_time() - before)
print(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), 1000 * min(burnt))
"""


def _clean_env(monkeypatch):
    for name in blas_threads._USER_LIMITS:
        monkeypatch.delenv(name, raising=False)


def test_no_blas_worker_spins_after_a_product(monkeypatch):
    _clean_env(monkeypatch)
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=root)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    threads, burnt_ms = out.stdout.split()
    assert int(threads) == 1
    assert float(burnt_ms) < 30  # ~100 ms when a worker spins; ~0 when none is left


def test_a_limit_the_user_set_wins(monkeypatch):
    calls = []
    monkeypatch.setitem(
        sys.modules, "threadpoolctl", types.SimpleNamespace(threadpool_limits=lambda **kw: calls.append(kw))
    )
    _clean_env(monkeypatch)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    blas_threads.blas_on_one_thread()
    assert calls == []
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    blas_threads.blas_on_one_thread()
    assert calls == [{"limits": 1, "user_api": "blas"}]


def test_without_threadpoolctl_one_warning_and_the_server_goes_on(monkeypatch, caplog):
    _clean_env(monkeypatch)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    blas_threads.blas_on_one_thread()
    assert "threadpoolctl is not installed" in caplog.text


def test_the_server_limits_blas_as_it_builds_the_pipeline(monkeypatch):
    import threadpoolctl

    _clean_env(monkeypatch)
    original = threadpoolctl.threadpool_limits(limits=4, user_api="blas")  # as if nothing had limited it
    try:
        server = FakeServer(FakeWhisper("hello"))
        try:
            blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
            assert blas and all(i["num_threads"] == 1 for i in blas)
        finally:
            assert server.stop() == []
    finally:
        original.restore_original_limits()
