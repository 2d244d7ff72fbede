"""WSGIMiddleware is invisible (issue 13, WSGIMiddleware rules 1-5 and 14), in process.

Each determinism rule runs 1,000 requests in a tight loop with ``sys.setswitchinterval(1e-6)``
and asserts one outcome; where a window between the worker and the loop matters, the worker is
slowed on purpose right after it hands something over (the hand-off's test hook), so a loop that
raced ahead would be caught every run.
"""

import asyncio
import gc
import logging
import sys
import threading
import time
import weakref

import pytest

from test_wsgi_support import Script, http_scope, mw, other_tasks, run  # noqa: F401

REPEAT = 1000


@pytest.fixture
def switchy():
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.fixture
def slow_puts(monkeypatch):
    """Slow the worker right after each hand-off put (the window where the loop may run)."""
    from a2wsgi import _handoff

    def hook(handoff, point):
        if point in ("put", "finish") and threading.current_thread().name == "a2wsgi-worker":
            time.sleep(0)

    monkeypatch.setattr(_handoff, "hook", hook)


class Boom(Exception):
    pass


def _placeholder(environ, start_response):
    raise AssertionError("replaced by each request's app")


class Tracked:
    """A response iterable that records its close() calls, with the thread that made them."""

    def __init__(self, gen):
        self.gen = gen
        self.closes = []

    def __iter__(self):
        return self.gen

    def close(self):
        self.closes.append(threading.current_thread().name)


def many(middleware, make_app, check, n=REPEAT, body=b""):
    """Serve ``n`` requests; ``make_app()`` returns (app, state); ``check(script, raised, state)``
    runs right after each ASGI call returned or raised."""

    async def go():
        for i in range(n):
            app, state = make_app()
            middleware.app = app
            script = Script(body=body)
            raised = None
            try:
                await middleware(http_scope(path="/r%d" % i), script.receive, script.send)
            except Exception as exc:
                raised = exc
            check(script, raised, state)
            raised = None
        assert other_tasks() == set()

    run(go(), timeout=120)


# ------------------------------------------------------------------------------------- rule 1

@pytest.mark.parametrize("where", ["before-start", "after-start", "after-empty-chunks"])
def test_error_before_any_body_byte_sends_nothing_and_propagates(mw, impl, switchy, slow_puts,
                                                                 where):
    def make_app():
        state = {}

        def app(environ, start_response):
            if where == "before-start":
                raise Boom(1)
            start_response("200 OK", [("Content-Type", "text/plain")])
            time.sleep(0)  # a slow app after start_response: nothing may go out meanwhile

            def gen():
                if where == "after-empty-chunks":
                    yield b""
                    yield b""
                raise Boom(1)
                yield b"never"

            result = state["result"] = Tracked(gen())
            return result

        return app, state

    def check(script, raised, state):
        assert type(raised) is Boom and script.sent == []
        if where != "before-start":
            assert state["result"].closes == ["a2wsgi-worker"]

    many(mw(_placeholder, workers=2), make_app, check)


def test_chunk_yielded_before_start_response_is_a_clear_error(mw, impl):
    def app(environ, start_response):
        def gen():
            yield b"too early"
            start_response("200 OK", [])

        return gen()

    script = Script()
    with pytest.raises(RuntimeError, match="before it called start_response"):
        run(mw(app)(http_scope(), script.receive, script.send))
    assert script.sent == []


# ------------------------------------------------------------------------------------- rule 2

@pytest.mark.parametrize("chunks", [1, 3, 12])
def test_error_after_body_bytes_sends_them_then_propagates(mw, impl, switchy, slow_puts, chunks):
    """A generator that raises after its chunks (12 > send_queue_size: more than one batch)."""

    def make_app():
        state = {}

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])

            def gen():
                for i in range(chunks):
                    yield b"<%d>" % i
                raise Boom(2)

            result = state["result"] = Tracked(gen())
            return result

        return app, state

    want = b"".join(b"<%d>" % i for i in range(chunks))

    def check(script, raised, state):
        assert type(raised) is Boom
        assert script.status == 200 and script.body == want
        assert all(m.get("more_body") for m in script.sent if m["type"] == "http.response.body")
        assert state["result"].closes == ["a2wsgi-worker"]

    many(mw(_placeholder, workers=2, send_queue_size=10), make_app, check)


def test_write_then_error_sends_the_written_bytes_then_propagates(mw, impl, switchy, slow_puts):
    def make_app():
        def app(environ, start_response):
            write = start_response("200 OK", [])
            write(b"written")
            raise Boom(2)

        return app, None

    def check(script, raised, state):
        assert type(raised) is Boom and script.body == b"written" and not script.complete

    many(mw(_placeholder), make_app, check)


# ------------------------------------------------------------------------------------- rule 3

def test_own_error_page_before_headers_is_sent_whole_logged_and_returns(mw, impl, switchy,
                                                                         slow_puts, caplog):
    def make_app():
        state = {}

        def app(environ, start_response):
            start_response("200 OK", [("X-Try", "1")])
            try:
                raise Boom(3)
            except Boom:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                               sys.exc_info())

            def gen():
                yield b"my "
                yield b"error page"

            result = state["result"] = Tracked(gen())
            return result

        return app, state

    def check(script, raised, state):
        assert raised is None
        assert script.status == 500 and script.body == b"my error page" and script.complete
        assert state["result"].closes == ["a2wsgi-worker"]
        errors = [r for r in caplog.records if r.name == "a2wsgi"]
        assert len(errors) == 1 and type(errors[0].exc_info[1]) is Boom
        assert errors[0].getMessage().startswith("GET /r")
        caplog.clear()

    with caplog.at_level(logging.ERROR, logger="a2wsgi"):
        many(mw(_placeholder), make_app, check)


# ------------------------------------------------------------------------------------- rule 4

def test_exc_info_after_headers_went_out_reraises_in_the_app_then_rule_2(mw, impl):
    seen = []

    def app(environ, start_response):
        start_response("200 OK", [])

        def gen():
            yield b"part"
            try:
                raise Boom(4)
            except Boom:
                try:
                    start_response("500 Oops", [], sys.exc_info())
                except Boom as exc:
                    seen.append(exc)
                    raise

        return gen()

    script = Script()
    with pytest.raises(Boom):
        run(mw(app)(http_scope(), script.receive, script.send))
    assert len(seen) == 1
    assert script.status == 200 and script.body == b"part" and not script.complete


# ------------------------------------------------------------------------------------- rule 5

def test_close_runs_once_on_the_worker_before_the_call_returns(mw, impl, switchy):
    """Also for a list response (the one-hop path) and a client that left mid-stream."""

    def make_app():
        state = {}

        def app(environ, start_response):
            start_response("200 OK", [])
            result = state["result"] = Tracked(iter([b"a", b"b"]))
            return result

        return app, state

    def check(script, raised, state):
        assert raised is None and script.body == b"ab"
        assert state["result"].closes == ["a2wsgi-worker"]

    many(mw(_placeholder), make_app, check)

    closes = []

    class Closing(list):
        def close(self):
            closes.append(threading.current_thread().name)

    def list_app(environ, start_response):
        start_response("200 OK", [])
        return Closing([b"x"])

    middleware = mw(list_app)
    for _ in range(50):
        script = run(middleware(http_scope(), (s := Script()).receive, s.send)) or s
        assert closes == ["a2wsgi-worker"] and script.body == b"x"
        closes.clear()


# ------------------------------------------------------------------------------------ rule 14

def test_slow_uploads_do_not_take_workers(mw, impl):
    """Ten requests each with one byte of a 1,000-byte body: no worker is taken, and an eleventh
    request is served at once by a pool of ten."""
    ran = []

    def app(environ, start_response):
        ran.append(environ["PATH_INFO"])
        body = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"%d" % len(body)]

    middleware = mw(app, workers=10)

    async def go():
        slow = [Script([{"type": "http.request", "body": b"x", "more_body": True}])
                for _ in range(10)]
        headers = [(b"content-length", b"1000")]
        tasks = [asyncio.ensure_future(middleware(http_scope(path="/slow", method="POST",
                                                             headers=headers),
                                                  s.receive, s.send)) for s in slow]
        for _ in range(5):
            await asyncio.sleep(0)
        fast = Script(body=b"abc")
        await asyncio.wait_for(
            middleware(http_scope(path="/fast", method="POST"), fast.receive, fast.send), 5)
        assert fast.body == b"3"
        assert ran == ["/fast"] and middleware._pool.threads == 1
        for s in slow:
            s.disconnect()
        await asyncio.gather(*tasks)
        assert ran == ["/fast"] and all(s.sent == [] for s in slow)

    run(go())


def test_a_large_upload_takes_a_worker_once_the_read_ahead_is_full(mw, impl):
    from a2wsgi.wsgi import READ_AHEAD_BYTES

    piece = 64 * 1024
    count = 12
    script = Script([{"type": "http.request", "body": b"u" * piece, "more_body": True}
                     for _ in range(count)] + [{"type": "http.request", "body": b""}])
    at_start = []

    def app(environ, start_response):
        at_start.append(script.received)
        body = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"%d" % len(body)]

    run(mw(app)(http_scope(method="POST"), script.receive, script.send))
    assert script.body == b"%d" % (piece * count)
    assert at_start == [READ_AHEAD_BYTES // piece]


# ------------------------------------------------------------------------- no reference cycle

@pytest.mark.refcounting
@pytest.mark.parametrize("shape", ["before-start", "mid-stream", "error-page", "read-error"])
def test_no_reference_cycle_outlives_a_failed_request(mw, impl, shape, caplog, monkeypatch):
    """With the cyclic garbage collector off, everything the app's frames held is freed as soon
    as the server drops the exception (exception -> traceback -> frame -> call would keep it)."""
    import a2wsgi.wsgi

    monkeypatch.setattr(a2wsgi.wsgi, "READ_AHEAD_BYTES", 2)

    class Marker:
        pass

    refs = []

    def app(environ, start_response):
        marker = Marker()
        refs.append(weakref.ref(marker))
        if shape == "before-start":
            raise Boom(marker)
        if shape == "read-error":
            environ["wsgi.input"].read()
        if shape == "error-page":
            try:
                raise Boom(marker)
            except Boom:
                start_response("500 Oops", [], sys.exc_info())
                return [b"page"]
        start_response("200 OK", [])

        def gen(marker=marker):
            yield b"x"
            raise Boom(marker)

        return gen()

    middleware = mw(app)
    messages = [{"type": "http.request", "body": b"ab", "more_body": True},
                {"type": "http.disconnect"}]

    async def go():
        script = Script(messages if shape == "read-error" else None)
        try:
            await middleware(http_scope(method="POST"), script.receive, script.send)
        except Boom:
            pass
        for _ in range(3):
            await asyncio.sleep(0)

    gc.collect()
    gc.disable()
    try:
        with caplog.at_level(logging.CRITICAL, logger="a2wsgi"):
            run(go())
        time.sleep(0.05)  # the worker thread's last references go when its job returns
        assert len(refs) == 1 and refs[0]() is None
    finally:
        gc.enable()
