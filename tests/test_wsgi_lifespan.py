"""Scope types other than HTTP, the worker threads' life cycle, and contextvars."""

import asyncio
import contextvars
import threading
import time

import pytest

from test_wsgi_support import HANG_GUARD, call, http_scope, mw, run, shutdown, worker_threads  # noqa: F401


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_lifespan_startup_and_shutdown_complete(mw, impl):
    sent = run(shutdown(mw(hello)))
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


def test_websocket_refused_with_close(mw, impl):
    sent = []
    messages = [{"type": "websocket.connect"}]

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    run(mw(hello)({"type": "websocket", "path": "/ws", "headers": []}, receive, send))
    assert len(sent) == 1 and sent[0]["type"] == "websocket.close"


def test_other_scope_types_are_a_clear_error(mw, impl):
    async def receive():
        raise AssertionError("not called")

    async def send(message):
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="'weird'"):
        run(mw(hello)({"type": "weird"}, receive, send))


def test_workers_created_lazily_and_stopped_at_shutdown(mw, impl):
    before = len(worker_threads())
    middleware = mw(hello, workers=4)
    assert len(worker_threads()) == before
    assert run(call(middleware)).body == b"hello"
    assert len(worker_threads()) == before + 1

    async def many():
        return await asyncio.gather(*(call(middleware) for _ in range(30)))

    assert all(s.body == b"hello" for s in run(many()))
    assert before + 1 <= len(worker_threads()) <= before + 4
    run(shutdown(middleware))
    assert len(worker_threads()) == before
    # a request after shutdown starts workers again, and they are stopped again
    assert run(call(middleware)).body == b"hello"
    assert len(worker_threads()) == before + 1
    run(middleware.shutdown())
    assert len(worker_threads()) == before


def test_idle_workers_exit(mw, impl, monkeypatch):
    import a2wsgi.wsgi

    monkeypatch.setattr(a2wsgi.wsgi, "IDLE_WORKER_SECONDS", 0.02)
    before = len(worker_threads())
    middleware = mw(hello, workers=2)
    assert run(call(middleware)).body == b"hello"
    deadline = time.monotonic() + HANG_GUARD
    while len(worker_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(worker_threads()) == before
    assert run(call(middleware)).body == b"hello"


def test_shutdown_waits_for_a_busy_worker(mw, impl):
    release = threading.Event()
    started = threading.Event()
    finished = []

    def slow(environ, start_response):
        started.set()
        release.wait(HANG_GUARD)
        finished.append(1)
        start_response("200 OK", [])
        return [b"done"]

    middleware = mw(slow, workers=1)
    before = len(worker_threads())

    async def go():
        request = asyncio.ensure_future(call(middleware))
        while not started.is_set():
            await asyncio.sleep(0.001)
        stopping = asyncio.ensure_future(middleware.shutdown())
        await asyncio.sleep(0.01)
        assert not stopping.done()
        release.set()
        await stopping
        return await request

    assert run(go()).body == b"done"
    assert finished == [1]
    assert len(worker_threads()) == before


def test_garbage_collected_middleware_stops_its_workers(impl):
    import gc

    from a2wsgi.wsgi import WSGIMiddleware

    before = len(worker_threads())
    middleware = WSGIMiddleware(hello, workers=2)
    assert run(call(middleware)).body == b"hello"
    assert len(worker_threads()) == before + 1
    del middleware
    gc.collect()
    deadline = time.monotonic() + HANG_GUARD
    while len(worker_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(worker_threads()) == before


request_id = contextvars.ContextVar("request_id", default=None)


def test_contextvars_of_the_task_visible_in_the_worker(mw, impl):
    seen = []

    def app(environ, start_response):
        seen.append((request_id.get(), threading.current_thread().name))
        request_id.set("changed in worker")
        start_response("200 OK", [])
        return [b""]

    middleware = mw(app)

    async def one(n):
        request_id.set("req-%d" % n)
        await call(middleware)
        assert request_id.get() == "req-%d" % n

    async def go():
        await asyncio.gather(*(one(n) for n in range(5)))

    run(go())
    assert sorted(seen) == [("req-%d" % n, "a2wsgi-worker") for n in range(5)]


def test_bad_constructor_arguments(impl):
    from a2wsgi.wsgi import WSGIMiddleware

    with pytest.raises(ValueError, match="workers"):
        WSGIMiddleware(hello, workers=0)
    with pytest.raises(ValueError, match="send_queue_size"):
        WSGIMiddleware(hello, send_queue_size=0)
    middleware = WSGIMiddleware(hello, workers=3, send_queue_size=7)
    assert (middleware.app, middleware.workers, middleware.send_queue_size) == (hello, 3, 7)


def test_top_level_import_and_http_scope_defaults(mw, impl):
    import a2wsgi

    assert a2wsgi.WSGIMiddleware is __import__("a2wsgi.wsgi").wsgi.WSGIMiddleware
    scope = http_scope()
    del scope["client"], scope["server"], scope["root_path"]
    assert run(call(mw(hello), scope)).body == b"hello"
