"""App errors: a 500 through ``start_response(..., exc_info)`` before the body started (PEP 3333
"Error Handling"), the exception raised from the iterable after, never a hang, always reported."""

import asyncio
import io
import logging

import pytest

from test_asgi_support import call, make_environ, middlewares, read_body, respond  # noqa: F401


class Boom(Exception):
    pass


def test_exception_before_start_is_500_every_time(middlewares):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await read_body(receive)
        raise Boom("before start")

    mw = middlewares(app)
    logging.getLogger("a2wsgi").disabled = True
    try:
        results = [call(mw, make_environ("/", "POST", b"data")) for _ in range(200)]
    finally:
        logging.getLogger("a2wsgi").disabled = False
    statuses = [r.status for r in results]
    assert statuses == ["500 Internal Server Error"] * 200
    assert all(r.calls[-1][2] is not None and r.calls[-1][2][0] is Boom for r in results)
    assert all(r.body == b"Internal Server Error" for r in results)


def test_exception_after_start_before_body_is_500(middlewares):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0)
        raise Boom("after start")

    response = call(middlewares(app), make_environ("/"))
    assert response.status.startswith("500 ")
    assert response.calls[-1][2][0] is Boom


def test_exception_after_body_started_is_raised_from_the_iterator(middlewares):
    release = asyncio.Event

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part one", "more_body": True})
        await asyncio.sleep(0.05)
        raise Boom("mid-body")

    seen = []
    response = call(middlewares(app), make_environ("/"), on_chunk=lambda r: seen.append(r.body))
    if seen:  # the server had the first chunk: the headers are out
        assert response.body == b"part one"
        assert isinstance(response.error, Boom)
    else:
        assert response.status.startswith("500 ")
    del release


def test_returns_without_start_is_500(middlewares, caplog):
    async def app(scope, receive, send):
        return None

    response = call(middlewares(app), make_environ("/x"))
    assert response.status.startswith("500 ")
    assert "without sending http.response.start" in caplog.text and "GET /x" in caplog.text


def test_returns_after_start_without_body_is_500(middlewares):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})

    assert call(middlewares(app), make_environ("/")).status.startswith("500 ")


def test_returns_mid_body_ends_the_body(middlewares, caplog):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        await asyncio.sleep(0.05)

    # issue 13 rule 2: the chunk, then an error raised from the iterable (a clean end would show a
    # truncated chunked body as complete), whether or not the server had taken the chunk
    response = call(middlewares(app), make_environ("/"))
    assert response.status == "200 OK" and response.body == b"half"
    assert isinstance(response.error, RuntimeError) and "completing its response body" in str(response.error)
    assert "completing its response body" in caplog.text


def test_error_reported_to_logger_and_wsgi_errors(middlewares, caplog):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            raise Boom("reported")

    errors = io.StringIO()
    with caplog.at_level(logging.ERROR, logger="a2wsgi"):
        call(middlewares(app), make_environ("/where", method="PUT", **{"wsgi.errors": errors}))
    record = [r for r in caplog.records if r.name == "a2wsgi"][0]
    assert "PUT /where" in record.getMessage() and record.exc_info[0] is Boom
    assert "PUT /where" in errors.getvalue() and "Boom: reported" in errors.getvalue()


def test_error_in_background_after_complete_body_is_logged_not_raised(middlewares, caplog):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await respond(send, b"complete")
        await asyncio.sleep(0.01)
        raise Boom("background")

    response = call(middlewares(app), make_environ("/"))
    assert response.status == "200 OK" and response.body == b"complete" and response.error is None
    assert "Boom: background" in caplog.text


def test_sync_app_returning_none_is_500(middlewares):
    class NotReallyAsync:
        async def __call__(self, scope, receive, send):
            pass

    def app(scope, receive, send):  # a callable that returns no awaitable
        if scope["type"] == "lifespan":
            return NotReallyAsync()(scope, receive, send)
        return None

    response = call(middlewares(app), make_environ("/"))
    assert response.status.startswith("500 ")


def test_status_not_int_is_500(middlewares, caplog):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            await respond(send, status="200 OK")

    assert call(middlewares(app), make_environ("/")).status.startswith("500 ")
    assert "'status' must be an int" in caplog.text


@pytest.mark.parametrize("exc_type", [Boom, KeyError, asyncio.CancelledError])
def test_never_hangs_whatever_the_app_raises(middlewares, exc_type):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            raise exc_type("x")

    assert call(middlewares(app), make_environ("/")).status.startswith("500 ")


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_app_raising_systemexit_does_not_stop_the_loop(middlewares, asgi_mode, exc_type):
    """On the loop thread nobody could act on it: logged, the loop runs on. Inline, the serving
    thread is the server's own: it reaches the server (gunicorn's sync worker stops with
    SystemExit on SIGQUIT while a request runs), and the next request is served."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/exit":
            raise exc_type()
        await respond(send, b"still serving")

    mw = middlewares(app)
    if asgi_mode == "inline":
        with pytest.raises(exc_type):
            call(mw, make_environ("/exit"))
    else:
        assert call(mw, make_environ("/exit")).status.startswith("500 ")
    assert call(mw, make_environ("/")).body == b"still serving"
