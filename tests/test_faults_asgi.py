"""ASGIMiddleware under faults: the WSGI server goes away at every phase of a request, and the app
raises at every phase (issue 7, A->W). After each fault the app task has ended, no thread or
asyncio task is left behind, and the same middleware serves the next request."""

import asyncio
import io
import logging
import threading

import pytest

from test_asgi_support import (HANG_GUARD, call, make_environ, middlewares,  # noqa: F401
                               pending_tasks, read_body, respond, wait_until)

STREAMED = 300_000  # beyond SMALL_BODY: read in pieces while the app asks


class FaultyInput:
    """``wsgi.input`` holding ``data`` that, once ``fail_at`` bytes were read, raises OSError
    (``short=False``) or returns b"" (``short=True``), as a server does when the client went away."""

    def __init__(self, data, fail_at, short=False):
        self._data = data
        self._pos = 0
        self._fail_at = fail_at
        self._short = short
        self.failures = 0

    def read(self, size=-1):
        if self._pos >= self._fail_at:
            self.failures += 1
            if self._short:
                return b""
            raise OSError("connection reset by peer")
        end = self._fail_at if size is None or size < 0 else min(self._fail_at, self._pos + size)
        data = self._data[self._pos:end]
        self._pos = end
        return data


def echo_app(record):
    """Reads the body (recording every message), then streams it back in 1000-byte chunks and
    goes on streaming until ``send`` raises; a disconnect while reading ends it after one
    ``send`` that must raise."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body, messages = await read_body(receive)
        record.append(("messages", messages))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            if body is None:
                record.append(("sent after disconnect", None))
                return
            for i in range(0, len(body), 1000):
                await send({"type": "http.response.body", "body": body[i:i + 1000], "more_body": True})
            if scope["path"] == "/forever":
                while True:
                    await send({"type": "http.response.body", "body": b"more", "more_body": True})
                    await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b""})
        except OSError as exc:
            record.append(("send raised", exc))
            return
        record.append(("completed", None))

    return app


@pytest.fixture
def baseline(middlewares):
    """``(mw, record, check)``: a middleware running ``echo_app`` that already served one request;
    ``check()`` asserts that the app task ended, that threads and tasks are back to where they
    were, and that the next request succeeds."""
    record = []
    mw = middlewares(echo_app(record))
    assert call(mw, make_environ("/", "POST", b"warm-up")).body == b"warm-up"
    threads = threading.active_count()
    del record[:]

    def check():
        assert pending_tasks(mw) == []
        assert wait_until(lambda: threading.active_count() <= threads), threading.enumerate()
        del record[:]
        body = b"next request %d" % threads
        response = call(mw, make_environ("/", "POST", body))
        assert response.status == "200 OK" and response.body == body and response.error is None
        assert record[-1] == ("completed", None)
        del record[:]

    return mw, record, check


def _saw_disconnect(record):
    """The app observed the disconnect: its receive() gave http.disconnect, or its send() raised
    OSError."""
    kinds = [entry[0] for entry in record]
    messages = [m for kind, value in record if kind == "messages" for m in value]
    return {"type": "http.disconnect"} in messages or "send raised" in kinds


@pytest.mark.parametrize("length, fail_at, short, terminated", [
    (100, 0, False, False),
    (100, 0, True, False),
    (100, 40, False, False),
    (100, 40, True, False),
    (STREAMED, 0, False, False),
    (STREAMED, 0, True, False),
    (STREAMED, 100_000, False, False),
    (STREAMED, 100_000, True, False),
    (STREAMED, STREAMED - 1, True, False),
    (None, 100_000, False, True),
], ids=["small-before-raise", "small-before-short", "small-mid-raise", "small-mid-short",
        "streamed-before-raise", "streamed-before-short", "streamed-mid-raise", "streamed-mid-short",
        "streamed-last-byte-short", "chunked-mid-raise"])
def test_client_gone_while_uploading(baseline, caplog, length, fail_at, short, terminated):
    mw, record, check = baseline
    data = bytes(range(256)) * (STREAMED // 256 + 1)
    stream = FaultyInput(data, fail_at, short)
    environ = make_environ("/", "POST", stream, content_length=length)
    if terminated:
        environ["wsgi.input_terminated"] = True
    response = call(mw, environ)
    messages = record[0][1]
    assert messages[-1] == {"type": "http.disconnect"}
    assert all(m["more_body"] for m in messages[:-1]), "a truncated body was handed over as complete"
    assert b"".join(m["body"] for m in messages[:-1]) == data[:fail_at][:len(b"".join(
        m["body"] for m in messages[:-1]))]
    assert record[1][0] == "send raised" and isinstance(record[1][1], OSError)
    # issue 13 rule 13: the client sent a short body (or its connection broke): a 400, not a 500
    assert response.status.startswith("400 ") and response.body.startswith(b"Bad Request")
    assert stream.failures <= 2  # no spin on an input that fails or keeps returning b""
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    check()


def test_client_gone_after_request_body_before_response(baseline):
    """The app read the whole streamed body and started its response; the server closes the
    iterable before taking anything (nothing was on the wire yet)."""
    mw, record, check = baseline
    body = b"u" * STREAMED
    result = mw(make_environ("/forever", "POST", body), lambda status, headers, exc_info=None: None)
    result.close()
    assert wait_until(lambda: record and record[-1][0] == "send raised")  # close() returns at once
    assert record[0][1][-1]["more_body"] is False
    assert b"".join(m["body"] for m in record[0][1]) == body
    assert _saw_disconnect(record) and record[-1][0] == "send raised"
    check()


@pytest.mark.parametrize("taken", [1, 5, 400], ids=["after-headers", "mid-stream", "deep-stream"])
def test_client_gone_while_streaming(baseline, taken):
    mw, record, check = baseline
    body = bytes(range(256)) * 1000
    response = call(mw, make_environ("/forever", "POST", body), max_chunks=taken)
    assert len(response.chunks) == taken
    assert wait_until(lambda: record and record[-1][0] == "send raised")  # close() returns at once
    assert response.body == (body + b"more" * taken)[:len(response.body)]
    assert record[-1][0] == "send raised" and isinstance(record[-1][1], OSError)
    check()


def test_pending_receive_gets_disconnect_when_the_server_closes_early(baseline):
    """A listener task awaiting receive() after the body learns of the disconnect too."""
    mw, record, check = baseline
    seen = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await read_body(receive)
        listener = asyncio.ensure_future(receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
                await asyncio.sleep(0)
        except OSError:
            seen.append(await asyncio.wait_for(listener, HANG_GUARD))

    mw.app = app  # the runtime keeps the lifespan of the first app; requests use mw.app
    try:
        call(mw, make_environ("/", "POST", b"x" * 100_000), max_chunks=2)
    finally:
        mw.app = echo_app(record)
    assert wait_until(lambda: seen)  # close() returns at once
    assert seen == [{"type": "http.disconnect"}]
    check()


@pytest.mark.parametrize("wait_time", [None, 0.05])
def test_client_gone_during_background_task(middlewares, wait_time):
    record = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body, _ = await read_body(receive)
        await respond(send, body)
        record.append(("after response", await receive()))
        try:
            await asyncio.sleep(0.01 if scope["path"] == "/short" else 3600)
        except asyncio.CancelledError:
            record.append(("cancelled", None))
            raise
        record.append(("background done", None))

    mw = middlewares(app, wait_time=wait_time)
    assert call(mw, make_environ("/short", "POST", b"warm")).body == b"warm"
    threads = threading.active_count()
    del record[:]
    path = "/short" if wait_time is None else "/long"
    result = mw(make_environ(path, "POST", b"first"), lambda status, headers, exc_info=None: None)
    assert next(iter(result)) == b"first"
    result.close()  # the server goes away with the background work still running
    assert wait_until(lambda: len(record) == 2)
    assert record[0] == ("after response", {"type": "http.disconnect"})
    assert record[1] == (("background done", None) if wait_time is None else ("cancelled", None))
    assert pending_tasks(mw) == []
    assert wait_until(lambda: threading.active_count() <= threads)
    assert call(mw, make_environ("/short", "POST", b"next")).body == b"next"


def test_start_response_raising_disconnects_the_app(baseline):
    """A server whose start_response fails (it could not send, or refused the headers): the
    exception reaches the server, and the app, still streaming, is told the client went away."""
    mw, record, check = baseline

    class ServerGone(OSError):
        pass

    def start_response(status, headers, exc_info=None):
        raise ServerGone("the server cannot send the response")

    with pytest.raises(ServerGone):
        mw(make_environ("/forever", "POST", b"abc"), start_response)
    assert wait_until(lambda: record and record[-1][0] == "send raised"), record
    check()


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
    """Records of the ``a2wsgi`` logger, which does not propagate meanwhile (no 800 tracebacks
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


def failing_app(phase, server_has_chunk):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        n = int(scope["query_string"])
        body, _ = await read_body(receive)
        if phase == "before-start":
            raise Boom(n)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if phase == "between-start-and-body":
            await asyncio.sleep(0)
            raise Boom(n)
        if phase == "mid-body":
            await send({"type": "http.response.body", "body": body, "more_body": True})
            while not server_has_chunk.is_set():  # the headers and the first chunk are out
                await asyncio.sleep(0.0005)
            raise Boom(n)
        await send({"type": "http.response.body", "body": body})
        await asyncio.sleep(0)
        raise Boom(n)

    return app


@pytest.mark.parametrize("phase", ["before-start", "between-start-and-body", "mid-body", "background"])
def test_errors_at_every_phase_every_time_exactly_once(middlewares, reported, phase):
    server_has_chunk = threading.Event()
    mw = middlewares(failing_app(phase, server_has_chunk))
    threads = None
    for n in range(REPEAT):
        server_has_chunk.clear()
        errors = io.StringIO()
        environ = make_environ("/", "POST", b"body %d" % n, query=str(n), **{"wsgi.errors": errors})
        response = call(mw, environ, on_chunk=lambda r: server_has_chunk.set())
        app_errors = [r for r in reported if r.levelno >= logging.ERROR]
        assert len(app_errors) == 1, [r.getMessage() for r in reported]
        raised = app_errors[0].exc_info[1]
        assert type(raised) is Boom and raised.args == (n,)
        assert errors.getvalue().count("Boom: %d\n" % n) == 1
        with_exc_info = [c for c in response.calls if c[2] is not None]
        if phase in ("before-start", "between-start-and-body"):
            assert [c[0] for c in response.calls] == ["500 Internal Server Error"]
            assert len(with_exc_info) == 1 and with_exc_info[0][2][1] is raised
            assert response.body == b"Internal Server Error" and response.error is None
        elif phase == "mid-body":
            assert [c[0] for c in response.calls] == ["200 OK"] and not with_exc_info
            assert response.body == b"body %d" % n and response.error is raised
            assert list(response.result) == []  # raised once: the iterable is over
        else:
            assert [c[0] for c in response.calls] == ["200 OK"] and not with_exc_info
            assert response.body == b"body %d" % n and response.error is None
        del reported[:]
        if threads is None:
            threads = threading.active_count()
    assert wait_until(lambda: threading.active_count() <= threads), threading.enumerate()
    assert pending_tasks(mw) == []
