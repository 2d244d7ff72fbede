"""Streamed responses: bounded buffer, batched wake-ups, and client disconnects mid-response."""

import asyncio
import itertools
import threading
import time

import pytest

from test_wsgi_support import (  # noqa: F401
    HANG_GUARD, Script, call, http_scope, mw, other_tasks, run, worker_threads,
)

CHUNK = 40 * 1024  # two chunks exceed the size under which a batch is joined into one message


class Stream:
    """A WSGI app streaming ``count`` chunks (forever when None) from a generator, recording
    how many it produced, whether its ``finally`` ran, and on which thread."""

    def __init__(self, count=None, chunk=b"x" * CHUNK):
        self.count = count
        self.chunk = chunk
        self.produced = 0
        self.closed = []
        self.after_close = 0

    def __call__(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return self.gen()

    def gen(self):
        try:
            for _ in (range(self.count) if self.count is not None else itertools.count()):
                self.produced += 1
                yield self.chunk
        finally:
            self.closed.append(threading.current_thread().name)


def body_chunks(script):
    return [m for m in script.sent if m["type"] == "http.response.body" and m.get("body")]


@pytest.mark.parametrize("size", [1, 3, 10])
def test_at_most_send_queue_size_chunks_held(mw, impl, size):
    app = Stream(count=60)
    held = []

    async def slow(message):
        if message["type"] == "http.response.body":
            sent = sum(len(m["body"]) for m in script.sent if m["type"] == "http.response.body")
            held.append(app.produced * CHUNK - sent)
            await asyncio.sleep(0)

    script = Script(on_send=slow)
    run(call(mw(app, send_queue_size=size), script=script))
    assert script.body == app.chunk * 60 and script.complete
    assert max(held) <= size * CHUNK
    assert app.closed == ["a2wsgi-worker"]


def test_one_wake_up_per_batch(mw, impl):
    """A worker handing chunks while the loop is busy sending does not wake it again."""
    app = Stream(count=200)
    wakes = []

    async def go():
        loop = asyncio.get_running_loop()
        original = loop.call_soon_threadsafe

        def counting(callback, *args, **kwargs):
            if threading.current_thread().name == "a2wsgi-worker":
                wakes.append(callback)
            return original(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counting

        async def paced(message):
            await asyncio.sleep(0.001)

        script = Script(on_send=paced)
        try:
            await mw(app, send_queue_size=10)(http_scope(), script.receive, script.send)
        finally:
            del loop.call_soon_threadsafe
        return script

    script = run(go())
    assert len(body_chunks(script)) == 200 and script.complete
    assert len(wakes) <= 200 // 2, len(wakes)


class WideningLock:
    """Stands in for an exchange's lock. Each time the loop thread leaves it having found nothing
    handed over (it made a new waiter), it waits there until the worker hands a chunk: the window
    in which a worker may append while the loop decides what to send, made wide on purpose."""

    def __init__(self, exchange, loop_thread):
        self._lock = threading.Lock()
        self._exchange = exchange
        self._loop_thread = loop_thread
        self._waiter = None
        self.widened = 0

    def __enter__(self):
        self._lock.acquire()
        self._waiter = self._exchange.waiter

    def __exit__(self, *exc):
        exchange = self._exchange
        widen = (threading.get_ident() == self._loop_thread and exchange.waiter is not self._waiter
                 and exchange.handed and not exchange.finished)
        self._lock.release()
        if widen:
            self.widened += 1
            deadline = time.monotonic() + HANG_GUARD
            while not exchange.out and not exchange.finished and time.monotonic() < deadline:
                time.sleep(0.001)


def test_chunks_handed_while_the_loop_looks_are_sent_once(mw, impl, monkeypatch):
    """A chunk the worker hands over just after the loop took a batch is sent once, in order: the
    worker is slowed right after each put (the hand-off's hook), so the loop takes batches while
    the worker is between two puts."""
    import time

    from a2wsgi import _handoff

    widened = []

    def hook(handoff, point):
        if point == "put" and threading.current_thread().name == "a2wsgi-worker":
            widened.append(point)
            time.sleep(0.0005)

    monkeypatch.setattr(_handoff, "hook", hook)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"%03d;" % i for i in range(60))

    script = run(call(mw(app, send_queue_size=10)))
    assert len(widened) >= 60
    assert script.body == b"".join(b"%03d;" % i for i in range(60))
    assert script.complete


def test_send_raising_stops_a_never_ending_generator(mw, impl):
    app = Stream(count=None)
    middleware = mw(app, workers=1, send_queue_size=4)

    async def go():
        script = Script(fail_send_after=6)
        await middleware(http_scope(), script.receive, script.send)
        assert other_tasks() == set()
        return script

    script = run(go())
    assert len(body_chunks(script)) == 5
    assert app.closed == ["a2wsgi-worker"]
    assert app.produced <= 5 + 1 + 4 + 1
    # the only worker is free again: a second request is served
    after = Stream(count=2)
    middleware.app = after
    assert run(call(middleware)).body == after.chunk * 2


def test_receive_disconnect_stops_a_never_ending_generator(mw, impl):
    app = Stream(count=None)
    produced_at_disconnect = []

    def on_send(message):
        if len(body_chunks(script)) == 3 and not produced_at_disconnect:
            produced_at_disconnect.append(app.produced)
            script.disconnect()

    async def go():
        await mw(app, send_queue_size=2)(http_scope(), script.receive, script.send)
        assert other_tasks() == set()

    script = Script(on_send=on_send)
    run(go())
    assert app.closed == ["a2wsgi-worker"]
    assert app.produced - produced_at_disconnect[0] <= 2 + 2
    assert not script.complete


def test_generator_with_idle_gaps_stops_on_disconnect(mw, impl):
    """Like server-sent events: the app sleeps between chunks; the disconnect still stops it."""
    closed = threading.Event()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def events():
            try:
                for n in itertools.count():
                    yield b"data: %d\n\n" % n
                    closed.wait(0.01)
            finally:
                closed.set()

        return events()

    def on_send(message):
        if message.get("body") and b"data: 3" in message["body"]:
            script.disconnect()

    script = Script(on_send=on_send)
    run(call(mw(app), script=script))
    assert closed.is_set()


def test_cancelled_request_stops_the_worker(mw, impl):
    app = Stream(count=None)
    middleware = mw(app, workers=1, send_queue_size=2)

    async def go():
        script = Script()
        task = asyncio.ensure_future(middleware(http_scope(), script.receive, script.send))
        while len(body_chunks(script)) < 3:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(int(HANG_GUARD * 1000)):
            if app.closed:
                break
            await asyncio.sleep(0.001)

    run(go())
    assert app.closed == ["a2wsgi-worker"]
    after = Stream(count=1)
    middleware.app = after
    assert run(call(middleware)).body == after.chunk


def test_client_gone_during_write(mw, impl):
    seen = []

    def app(environ, start_response):
        write = start_response("200 OK", [])
        try:
            for _ in range(1000):
                write(b"y" * CHUNK)
        except OSError as exc:
            seen.append(exc)
            raise
        return []

    script = Script(fail_send_after=3)
    run(call(mw(app, send_queue_size=2), script=script))
    assert len(seen) == 1 and type(seen[0]).__name__ == "ClientDisconnected"


def test_small_chunks_joined_per_batch(mw, impl):
    app = Stream(count=300, chunk=b"z")

    async def paced(message):
        await asyncio.sleep(0.0005)

    script = Script(on_send=paced)
    run(call(mw(app, send_queue_size=10), script=script))
    assert script.body == b"z" * 300 and script.complete
    assert len(body_chunks(script)) < 300


def test_streamed_download_with_file_wrapper(mw, impl, tmp_path):
    path = tmp_path / "data.bin"
    data = bytes(range(256)) * 4096
    path.write_bytes(data)
    handles = []

    def app(environ, start_response):
        start_response("200 OK", [])
        handle = open(str(path), "rb")
        handles.append(handle)
        return environ["wsgi.file_wrapper"](handle, 8192)

    script = run(call(mw(app, send_queue_size=4)))
    assert script.body == data and script.complete
    assert handles[0].closed


def test_pathsend_when_offered(mw, impl, tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"file content")
    handles = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "12")])
        handle = open(str(path), "rb")
        handles.append(handle)
        return environ["wsgi.file_wrapper"](handle)

    scope = http_scope(extensions={"http.response.pathsend": {}})
    script = run(call(mw(app), scope))
    assert [m["type"] for m in script.sent] == ["http.response.start", "http.response.pathsend"]
    assert script.sent[1]["path"] == str(path.resolve())
    assert handles[0].closed


def test_pathsend_not_used_for_a_moved_or_fake_file(mw, impl, tmp_path):
    import io

    path = tmp_path / "f.txt"
    path.write_bytes(b"0123456789")

    def app(environ, start_response):
        start_response("200 OK", [])
        if environ["PATH_INFO"] == "/seeked":
            handle = open(str(path), "rb")
            handle.seek(4)
            return environ["wsgi.file_wrapper"](handle)
        return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory"))

    middleware = mw(app)
    extensions = {"http.response.pathsend": {}}
    script = run(call(middleware, http_scope(path="/seeked", extensions=extensions)))
    assert script.body == b"456789" and script.complete
    script = run(call(middleware, http_scope(path="/memory", extensions=extensions)))
    assert script.body == b"in memory" and script.complete


def test_concurrent_requests_bounded_by_workers(mw, impl):
    active = []
    peak = []
    lock = threading.Lock()
    gate = threading.Event()

    def app(environ, start_response):
        with lock:
            active.append(1)
            peak.append(len(active))
        gate.wait(HANG_GUARD)
        with lock:
            active.pop()
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    middleware = mw(app, workers=3)

    async def go():
        tasks = [asyncio.ensure_future(call(middleware, path="/%d" % i)) for i in range(20)]
        while len(peak) < 3:
            await asyncio.sleep(0.001)
        assert len(worker_threads()) >= 3
        gate.set()
        return await asyncio.gather(*tasks)

    before = len(worker_threads())
    scripts = run(go())
    assert [s.body for s in scripts] == [b"/%d" % i for i in range(20)]
    assert max(peak) == 3
    assert len(worker_threads()) - before <= 3


def test_httpx_asgi_transport(mw, impl):
    import httpx

    def app(environ, start_response):
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Method", environ["REQUEST_METHOD"])])
        return [b"got ", data]

    async def go():
        transport = httpx.ASGITransport(app=mw(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            small = await client.post("/echo", content=b"hello")

            async def pieces():
                for i in range(20):
                    yield b"%02d" % i

            chunked = await client.post("/echo", content=pieces())
            return small, chunked

    small, chunked = run(go())
    assert small.status_code == 200 and small.text == "got hello"
    assert small.headers["x-method"] == "POST"
    assert chunked.content == b"got " + b"".join(b"%02d" % i for i in range(20))


def test_receive_repeating_a_request_message_is_not_polled_forever(mw, impl):
    """After the body, only http.disconnect may come; a receive that keeps returning the request
    message (some test harnesses do) must not keep the loop busy while a response streams."""
    app = Stream(count=50)
    message = {"type": "http.request", "body": b"", "more_body": False}
    calls = []

    async def receive():
        calls.append(1)
        return message

    async def send(event):
        await asyncio.sleep(0)

    run(mw(app, send_queue_size=2)(http_scope(), receive, send))
    assert app.produced == 50 and app.closed
    assert len(calls) <= 2


def test_receive_raising_during_upload_is_logged_and_ends_the_body(mw, impl, caplog, monkeypatch):
    import logging

    import a2wsgi.wsgi

    # the first piece fills the read-ahead, so the app runs before the body is complete
    monkeypatch.setattr(a2wsgi.wsgi, "READ_AHEAD_BYTES", 3)

    seen = []
    messages = [{"type": "http.request", "body": b"abc", "more_body": True}]

    async def receive():
        if messages:
            return messages.pop()
        raise RuntimeError("server receive broke")

    sent = []

    async def send(event):
        sent.append(event)

    def app(environ, start_response):
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            seen.append(exc)
            raise
        start_response("200 OK", [])
        return [b"unreachable"]

    with caplog.at_level(logging.ERROR, logger="a2wsgi"):
        run(mw(app)(http_scope(method="POST", path="/up"), receive, send))
    assert len(seen) == 1 and isinstance(seen[0], OSError)
    assert any("POST /up" in r.getMessage() and "receive()" in r.getMessage() for r in caplog.records)
    assert sent == []
