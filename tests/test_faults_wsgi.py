"""WSGIMiddleware under faults: the client goes away at every phase of a request, in both forms
(the server's ``send()`` raising OSError, ``receive()`` returning ``http.disconnect``), and the app
raises at every phase (issue 7, W->A). After each fault the app's ``close()`` ran exactly once, no
thread or asyncio task is left behind, and the same middleware serves the next request."""

import asyncio
import itertools
import logging
import threading

import pytest

from test_wsgi_support import (HANG_GUARD, Script, http_scope, mw, other_tasks, run,  # noqa: F401
                               worker_threads)

PIECE = 4096  # one upload message
READ = 1500  # the app's read size: reads straddle the message boundaries
TICK = b"tick" * 16
DISCONNECT = {"type": "http.disconnect"}


def upload(pieces):
    messages = [{"type": "http.request", "body": p, "more_body": True} for p in pieces]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    return messages


def body_of(n):
    return bytes(range(256)) * (n // 256) + bytes(range(n % 256))


class Client(Script):
    """A Script that counts the ``http.disconnect`` messages it handed out, and whose ``send`` may
    fail when ``fail_when(message)`` is true (OSError, as a server whose client went away)."""

    def __init__(self, messages=None, fail_when=None, **kwargs):
        super().__init__(messages, **kwargs)
        self.fail_when = fail_when
        self.disconnects = 0
        self.failed = 0

    async def receive(self):
        message = await super().receive()
        if message["type"] == "http.disconnect":
            self.disconnects += 1
        return message

    async def send(self, message):
        if self.fail_when is not None and self.fail_when(message):
            self.failed += 1
            raise OSError("scripted client went away")
        await super().send(message)


class PhaseApp:
    """A WSGI app whose response iterable does all the work lazily, so that ``close()`` is owed
    at every phase: it reads the body in ``READ``-byte pieces, calls ``start_response``, echoes
    the body in ``READ``-byte chunks, then streams ``TICK`` (forever on ``/forever``).

    ``/early`` starts the response before reading and yields each piece as soon as it is read;
    ``/think`` waits for ``think`` between the body and ``start_response``; ``/slowclose`` makes
    ``close()`` wait for ``close_gate``. Records what the app read, the errors its reads and
    yields met, and the thread of every ``close()`` call."""

    def __init__(self):
        self.read = []
        self.errors = []
        self.closes = []
        self.produced = 0
        self.read_done = threading.Event()
        self.think = threading.Event()
        self.close_gate = threading.Event()
        self.close_started = threading.Event()

    def __call__(self, environ, start_response):
        return PhaseResponse(self, environ, start_response)


class PhaseResponse:
    def __init__(self, app, environ, start_response):
        self.app = app
        self.environ = environ
        self.start_response = start_response
        self.gen = self._gen()

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.gen)

    def _gen(self):
        app = self.app
        path = self.environ["PATH_INFO"]
        stream = self.environ["wsgi.input"]
        if path == "/early":
            self.start_response("200 OK", [("Content-Type", "application/octet-stream")])
        try:
            while True:
                data = stream.read(READ)
                if not data:
                    break
                app.read.append(data)
                if path == "/early":
                    app.produced += 1
                    yield data
        except OSError as exc:
            app.errors.append(exc)
            raise
        app.read_done.set()
        if path == "/think":
            assert app.think.wait(HANG_GUARD)
        if path != "/early":
            self.start_response("200 OK", [("Content-Type", "application/octet-stream")])
            body = b"".join(app.read)
            for i in range(0, len(body), READ):
                app.produced += 1
                yield body[i:i + READ]
        ticks = itertools.count() if path == "/forever" else range(3)
        for _ in ticks:
            app.produced += 1
            yield TICK
        yield b"LAST"

    def close(self):
        self.app.closes.append(threading.current_thread().name)
        self.gen.close()
        if self.environ["PATH_INFO"] == "/slowclose":
            self.app.close_started.set()
            assert self.app.close_gate.wait(HANG_GUARD)


def expected_body(body, path="/"):
    return body + TICK * 3 + b"LAST"


def other_threads():
    return threading.active_count() - len(worker_threads())


def threads_settled(middleware, others):
    """No worker of ``middleware`` is busy, at most ``workers`` exist, and the other threads
    are back to ``others``: idle workers are the pool's to keep (they exit after
    ``IDLE_WORKER_SECONDS``)."""
    pool = middleware._pool
    busy = pool.threads - pool._idle if pool is not None else 0
    # Only this middleware's workers are bounded by its ``workers``: idle workers of middlewares
    # from earlier tests may still be alive (they exit after IDLE_WORKER_SECONDS).
    mine = pool.threads if pool is not None else 0
    return busy == 0 and mine <= middleware.workers and other_threads() <= others


async def until(predicate):
    for _ in range(int(HANG_GUARD * 1000)):
        if predicate():
            return True
        await asyncio.sleep(0.001)
    return predicate()


@pytest.fixture
def served(mw):
    """``(app, middleware, settle)``: a middleware serving a ``PhaseApp`` that already answered one
    request. ``await settle(closes)`` asserts that ``close()`` ran ``closes`` times in all, on the
    worker, that no task is pending and the thread count is back to the baseline taken after the
    warm-up, and that the next request succeeds."""
    app = PhaseApp()
    middleware = mw(app, workers=2, send_queue_size=2)
    state = {}

    async def warm_up():
        client = await call(middleware, Client(upload([b"warm"])), path="/", method="POST")
        assert client.body == expected_body(b"warm")
        state["threads"] = other_threads()
        del app.closes[:], app.read[:]
        app.read_done.clear()

    async def settle(closes):
        assert other_tasks() == set()
        assert await until(lambda: len(app.closes) >= closes)
        assert app.closes == ["a2wsgi-worker"] * closes
        assert await until(lambda: threads_settled(middleware, state["threads"])), threading.enumerate()
        del app.read[:], app.errors[:]
        body = body_of(3 * PIECE)
        client = await call(middleware, Client(upload([body[:PIECE], body[PIECE:]])), path="/", method="POST")
        assert client.status == 200 and client.complete and client.body == expected_body(body)
        assert other_tasks() == set()

    return app, middleware, warm_up, settle


async def call(middleware, client, path="/", method="GET"):
    await middleware(http_scope(path=path, method=method), client.receive, client.send)
    return client


def body_sends(client):
    return [m for m in client.sent if m["type"] == "http.response.body"]


def no_errors_logged(caplog):
    return [r for r in caplog.records if r.name == "a2wsgi" and r.levelno >= logging.ERROR] == []


# ---------------------------------------------------------------------- receive(): http.disconnect

def test_disconnect_before_the_body_does_not_run_the_app(served, caplog):
    app, middleware, warm_up, settle = served

    async def go():
        await warm_up()
        client = await call(middleware, Client([DISCONNECT]), method="POST")
        assert client.sent == [] and app.read == []
        await settle(0)

    run(go())
    assert no_errors_logged(caplog)


def test_disconnect_mid_small_upload_never_takes_a_worker(served, caplog):
    """A body that fits the read-ahead is read on the loop before a worker is taken (issue 13,
    rule 14): cut short, the app never runs."""
    app, middleware, warm_up, settle = served
    body = body_of(5 * PIECE)

    async def go():
        await warm_up()
        messages = upload([body[i:i + PIECE] for i in range(0, len(body), PIECE)])[:3] + [DISCONNECT]
        client = await call(middleware, Client(messages), method="POST")
        assert client.sent == [] and app.read == [] and app.errors == []
        await settle(0)

    run(go())
    assert no_errors_logged(caplog)


def test_disconnect_mid_upload(served, caplog, monkeypatch):
    """A body larger than the read-ahead: the app runs once READ_AHEAD_BYTES arrived, and its
    read meets the disconnect."""
    import a2wsgi.wsgi as wsgi

    monkeypatch.setattr(wsgi, "READ_AHEAD_BYTES", 2 * PIECE)
    app, middleware, warm_up, settle = served
    body = body_of(5 * PIECE)

    async def go():
        await warm_up()
        messages = upload([body[i:i + PIECE] for i in range(0, len(body), PIECE)])[:3] + [DISCONNECT]
        client = await call(middleware, Client(messages), method="POST")
        assert client.sent == []
        assert len(app.errors) == 1 and type(app.errors[0]).__name__ == "ClientDisconnected"
        # the read that met the disconnect raised: the bytes it had gathered are not returned
        assert b"".join(app.read) == body[:3 * PIECE // READ * READ]
        await settle(1)

    run(go())
    assert no_errors_logged(caplog)


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed-body", "one-message-body"])
def test_disconnect_after_the_body_before_the_response(served, caplog, streamed):
    """With a streamed body the disconnect is seen at once and nothing is sent. A body in one
    message is answered without a watcher until the first handoff (the one-hop path): the
    stream stops within a batch after it."""
    app, middleware, warm_up, settle = served
    body = body_of(2 * PIECE)

    async def go():
        await warm_up()
        if streamed:
            messages = upload([body[:PIECE], body[PIECE:]])
        else:
            messages = [{"type": "http.request", "body": body, "more_body": False}]
        client = Client(messages)
        task = asyncio.ensure_future(call(middleware, client, path="/think", method="POST"))
        assert await until(app.read_done.is_set)
        client.disconnect()
        if streamed:
            assert await until(lambda: client.disconnects == 1)
            await asyncio.sleep(0)
        app.think.set()
        await task
        if streamed:
            assert client.sent == []
        else:
            assert client.disconnects == 1 and not client.complete
        assert b"".join(app.read) == body
        await settle(1)

    run(go())
    assert no_errors_logged(caplog)


@pytest.mark.parametrize("after_chunks", [0, 3], ids=["after-headers", "mid-stream"])
def test_disconnect_while_streaming_forever(served, caplog, after_chunks):
    app, middleware, warm_up, settle = served
    produced = []

    def on_send(message):
        if len(body_sends(client)) == after_chunks and not produced:
            produced.append(app.produced)
            client.disconnect()

    async def go():
        await warm_up()
        await call(middleware, client, path="/forever", method="POST")
        assert client.disconnects == 1 and not client.complete
        assert app.produced - produced[0] <= 2 * 2 + 2  # the buffer, one batch in flight
        await settle(1)

    client = Client(upload([b"x" * 100]), on_send=on_send)
    run(go())
    assert no_errors_logged(caplog)


def test_disconnect_while_close_runs(served, caplog):
    app, middleware, warm_up, settle = served

    async def go():
        await warm_up()
        client = Client(upload([b"abc"]))
        task = asyncio.ensure_future(call(middleware, client, path="/slowclose", method="POST"))
        assert await until(app.close_started.is_set)
        client.disconnect()
        assert await until(lambda: client.disconnects == 1)
        app.close_gate.set()
        await task
        assert client.body == expected_body(b"abc")[:len(client.body)]
        app.close_gate.clear()
        await settle(1)

    run(go())
    assert no_errors_logged(caplog)


# ---------------------------------------------------------------------- send(): OSError

@pytest.mark.parametrize("fail_at, phase", [
    (0, "before-body"),       # /early: the app starts its response before reading the body
    (2, "mid-upload"),        # /early: the client leaves while the app reads and echoes
    (0, "after-body"),        # the status line and headers cannot be sent
    (1, "after-headers"),
    (4, "mid-stream"),
])
def test_send_raising_at_every_phase(served, caplog, fail_at, phase):
    app, middleware, warm_up, settle = served
    body = body_of(6 * PIECE)
    path = {"before-body": "/early", "mid-upload": "/early"}.get(phase, "/forever")
    sends = []

    def fail_when(message):
        sends.append(message["type"])
        return len(sends) > fail_at

    async def go():
        await warm_up()
        client = Client(upload([body[i:i + PIECE] for i in range(0, len(body), PIECE)]), fail_when=fail_when)
        await call(middleware, client, path=path, method="POST")
        assert client.failed == 1
        assert len(client.sent) == fail_at and not client.complete
        sent = client.body
        if path == "/early":
            assert sent == body[:len(sent)]
        seen = b"".join(app.read)
        assert seen == body[:len(seen)]
        if app.errors:
            assert len(app.errors) == 1 and type(app.errors[0]).__name__ == "ClientDisconnected"
        await settle(1)

    run(go())
    assert no_errors_logged(caplog)


def test_send_raising_while_close_runs(served, caplog):
    app, middleware, warm_up, settle = served
    failed = threading.Event()

    def fail_when(message):
        if message.get("body", b"").endswith(b"LAST"):
            failed.set()
            return True
        return False

    async def go():
        await warm_up()
        client = Client(upload([b"abc"]), fail_when=fail_when)
        task = asyncio.ensure_future(call(middleware, client, path="/slowclose", method="POST"))
        assert await until(app.close_started.is_set)
        assert await until(failed.is_set)
        app.close_gate.set()
        await task
        assert client.failed == 1 and not client.complete
        assert client.body == expected_body(b"abc")[:len(client.body)]
        app.close_gate.clear()
        await settle(1)

    run(go())
    assert no_errors_logged(caplog)


def test_unread_upload_while_streaming_forever_on_a_silent_send(served, caplog):
    """The known gap of uvicorn's send(), which does nothing once the client is gone: an app that
    streams forever without reading a large upload. The body is buffered, never discarded, up to
    a cap, so receive() stays asked and the disconnect behind the upload is seen."""
    import a2wsgi.wsgi as wsgi

    app, middleware, warm_up, settle = served
    total = wsgi.READ_AHEAD_BYTES + 4 * 65536
    client = Client()
    client.messages = upload([b"u" * 65536] * (total // 65536))[:-1] + [DISCONNECT]
    silent = []

    async def send(message):
        if client.disconnects:
            silent.append(message)
            return
        await Client.send(client, message)

    def gen_app(environ, start_response):
        start_response("200 OK", [])
        return ticking(environ)

    def ticking(environ):
        try:
            while True:
                yield TICK
        finally:
            app.closes.append(threading.current_thread().name)

    async def go():
        await warm_up()
        middleware.app = gen_app
        try:
            await middleware(http_scope(method="POST", path="/unread"), client.receive, send)
        finally:
            middleware.app = app
        assert client.disconnects == 1
        assert len(silent) <= 2 * 2 + 2
        await settle(1)

    run(go())
    assert no_errors_logged(caplog)


# ---------------------------------------------------------------------- errors at every phase

class Boom(Exception):
    pass


REPEAT = 200


class Reported(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def reported():
    """Records of the ``a2wsgi`` logger, which does not propagate meanwhile (no 1600 tracebacks
    in the captured log)."""
    handler = Reported()
    log = logging.getLogger("a2wsgi")
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield handler.records
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


class FailingApp:
    """Raises ``Boom(n)`` (n from the query string) at ``phase``; counts ``close()`` calls."""

    def __init__(self, phase):
        self.phase = phase
        self.closes = 0
        self.server_has_chunk = threading.Event()

    def __call__(self, environ, start_response):
        n = int(environ["QUERY_STRING"])
        body = environ["wsgi.input"].read()
        if self.phase == "before-start":
            raise Boom(n)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return FailingResponse(self, n, body)


class FailingResponse:
    def __init__(self, app, n, body):
        self.app = app
        self.n = n
        self.body = body
        self.gen = self._gen()

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.gen)

    def _gen(self):
        phase = self.app.phase
        if phase == "after-start":
            raise Boom(self.n)
        yield self.body
        if phase == "mid-stream":
            assert self.app.server_has_chunk.wait(HANG_GUARD)
            raise Boom(self.n)
        yield b"!"

    def close(self):
        self.app.closes += 1
        if self.app.phase == "in-close":
            raise Boom(self.n)


@pytest.mark.parametrize("phase", ["before-start", "after-start", "mid-stream", "in-close"])
def test_errors_at_every_phase_every_time_exactly_once(mw, reported, phase):
    app = FailingApp(phase)
    middleware = mw(app, workers=3)

    def on_send(message):
        if message.get("body"):
            app.server_has_chunk.set()

    async def go():
        others = None
        for n in range(REPEAT):
            app.server_has_chunk.clear()
            client = Client([{"type": "http.request", "body": b"body %d" % n}], on_send=on_send)
            raised = []
            try:
                await middleware(http_scope(method="POST", query_string=b"%d" % n), client.receive,
                                 client.send)
            except Boom as exc:
                raised.append(exc)
            logged = [r.exc_info[1] for r in reported if r.levelno >= logging.ERROR]
            assert [type(e) for e in raised + logged] == [Boom], [r.getMessage() for r in reported]
            assert (raised + logged)[0].args == (n,)
            if phase in ("before-start", "after-start"):
                assert raised and client.sent == []
            elif phase == "mid-stream":
                assert raised and client.status == 200 and not client.complete
                assert client.body == b"body %d" % n
            else:
                assert logged and client.status == 200 and client.complete
                assert client.body == b"body %d!" % n
                assert "close() raised" in reported[-1].getMessage()
            assert "POST /" in reported[-1].getMessage() if logged else True
            assert app.closes == (n + 1 if phase != "before-start" else 0)
            assert other_tasks() == set()
            del reported[:]
            if others is None:
                others = other_threads()
        assert await until(lambda: threads_settled(middleware, others))

    run(go(), timeout=60)


def test_error_and_close_error_are_each_reported_once(mw, reported):
    """The app fails after start_response and its close() fails too: the first reaches the
    server (nothing sent: the server answers), the second the logger."""
    class App(FailingApp):
        pass

    app = App("after-start")

    def close_fails(self):
        self.app.closes += 1
        raise Boom("close %d" % self.n)

    original = FailingResponse.close
    FailingResponse.close = close_fails
    try:
        client = Client([{"type": "http.request", "body": b"x"}])
        with pytest.raises(Boom) as info:
            run(middleware_call(mw(app), client, b"7"))
    finally:
        FailingResponse.close = original
    assert info.value.args == (7,)
    assert client.sent == []
    assert [r.exc_info[1].args for r in reported if r.levelno >= logging.ERROR] == [("close 7",)]
    assert app.closes == 1


async def middleware_call(middleware, client, query):
    await middleware(http_scope(method="POST", query_string=query), client.receive, client.send)


def test_streaming_read_ahead_is_still_bounded(served):
    """The read-ahead that keeps ``receive()`` asked for a streaming app stops at
    ``STREAMING_READ_AHEAD_BYTES``: an app that never reads a 4 MiB upload holds at most that."""
    import a2wsgi.wsgi as wsgi

    app, middleware, warm_up, settle = served
    piece = 65536
    client = Client(upload([b"u" * piece] * (4 * 1024 * 1024 // piece)))
    received = []

    def on_send(message):
        received.append(client.received)

    client.on_send = on_send

    def gen_app(environ, start_response):
        start_response("200 OK", [])
        return ticks()

    def ticks():
        for _ in range(100):
            yield TICK * 1024

    async def go():
        await warm_up()
        middleware.app = gen_app
        try:
            await middleware(http_scope(method="POST"), client.receive, client.send)
        finally:
            middleware.app = app
        assert client.complete and client.body == TICK * 1024 * 100
        assert max(received) <= wsgi.STREAMING_READ_AHEAD_BYTES // piece + 1
        await settle(0)

    run(go())
