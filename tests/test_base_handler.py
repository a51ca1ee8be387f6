import logging
import queue
import threading
import time

from utils.pipeline.base_handler import BaseHandler
from utils.pipeline.messages import END, Conversation, Transcript, Turn
from utils.pipeline.thread_manager import ThreadManager


class Doubler(BaseHandler):
    def setup(self, fail_on=()):
        self.fail_on = set(fail_on)
        self.cleaned = False

    def process(self, item):
        if item in self.fail_on:
            raise ValueError(f"cannot handle {item}")
        yield item * 2

    def cleanup(self):
        self.cleaned = True


def run_handler(handler_class, items, **setup):
    stop, q_in, q_out = threading.Event(), queue.Queue(), queue.Queue()
    dropped = []
    handler = handler_class(stop, q_in, q_out, setup_kwargs=setup, on_turn_dropped=dropped.append)
    for item in items:
        q_in.put(item)
    thread = threading.Thread(target=handler.run)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "handler did not stop on END"
    out = []
    while not q_out.empty():
        out.append(q_out.get())
    return handler, out, dropped


def test_end_is_passed_on():
    handler, out, _ = run_handler(Doubler, [1, 2, END])
    assert out == [2, 4, END]
    assert handler.cleaned


def test_exception_drops_the_turn_logs_the_name_and_keeps_serving(caplog):
    caplog.set_level(logging.ERROR)
    handler, out, dropped = run_handler(Doubler, [1, 2, 3, END], fail_on={2})
    assert out == [2, 6, END]
    assert dropped == [2]
    assert handler.errors == 1
    assert any("Doubler" in r.getMessage() and r.exc_info for r in caplog.records)


def test_end_is_passed_on_even_when_cleanup_fails():
    class BadCleanup(Doubler):
        def cleanup(self):
            raise RuntimeError("boom")

    _, out, _ = run_handler(BadCleanup, [END])
    assert out == [END]


def test_items_of_an_ended_conversation_are_dropped():
    class Upper(BaseHandler):
        def process(self, t):
            yield t.text.upper()

    gone, live = Conversation(), Conversation()
    gone.end()
    items = [Transcript("old", "en", Turn(gone, 0.0)), Transcript("new", "en", Turn(live, 0.0)), END]
    _, out, _ = run_handler(Upper, items)
    assert out == ["NEW", END]


def test_thread_manager_stops_idle_handlers_quickly():
    stop = threading.Event()
    handlers = [Doubler(stop, queue.Queue(), queue.Queue()) for _ in range(4)]
    manager = ThreadManager(handlers, stop)
    manager.start()
    t = time.monotonic()
    alive = manager.stop(timeout=2)
    assert alive == []
    assert time.monotonic() - t < 2
    assert all(h.cleaned for h in handlers)


def test_put_gives_up_on_a_full_queue_when_stopping():
    stop = threading.Event()
    full = queue.Queue(maxsize=1)
    full.put("x")
    handler = Doubler(stop, queue.Queue(), full)
    stop.set()
    t = time.monotonic()
    handler.put("y")
    assert time.monotonic() - t < 1
    assert full.get_nowait() == "x"
