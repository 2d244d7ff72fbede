"""ASGIMiddleware given bad input, from the WSGI server (the environ) or from the ASGI app (its
response messages): each gets a clear error that names what was wrong, nothing malformed reaches
the server, and the same middleware serves the next request (issue 7, A->W)."""

import asyncio
import logging
import re
import threading

import pytest

from test_asgi_support import call, make_environ, middlewares, pending_tasks, read_body, respond  # noqa: F401


async def echo_app(scope, receive, send):
    if scope["type"] != "http":
        return
    body, _ = await read_body(receive)
    await respond(send, b"%s %s %d" % (scope["method"].encode(), scope["query_string"], len(body or b"")))


def assert_still_serving(mw):
    response = call(mw, make_environ("/", "POST", b"12345", query="next=1"))
    assert response.status == "200 OK" and response.body == b"POST next=1 5", response.calls
    assert pending_tasks(mw) == []


# ---------------------------------------------------------------------- from the WSGI server

@pytest.mark.parametrize("key", ["REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT"])
def test_environ_missing_a_required_key_names_it(middlewares, key):
    mw = middlewares(echo_app)
    environ = make_environ("/")
    del environ[key]
    with pytest.raises(ValueError, match="'%s'.*PEP 3333" % key):
        mw(environ, lambda status, headers, exc_info=None: None)
    assert_still_serving(mw)


@pytest.mark.parametrize("key", ["REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT"])
def test_build_scope_missing_a_required_key_names_it(impl, key):
    environ = make_environ("/")
    del environ[key]
    with pytest.raises(ValueError, match="'%s'" % key):
        impl.asgi_hot.build_scope(environ)


@pytest.mark.parametrize("value", ["-1", "-0", "abc", "1.5", "1e3", "0x10", "+4", "\uff11\uff12", "1 2",
                                   "\t"])
def test_bad_content_length_is_400_naming_it(middlewares, caplog, value):
    called = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            called.append(scope)
        await echo_app(scope, receive, send)

    mw = middlewares(app)
    with caplog.at_level(logging.INFO, logger="a2wsgi"):
        response = call(mw, make_environ("/", "POST", b"body", CONTENT_LENGTH=value))
    assert response.status == "400 Bad Request" and b"Content-Length" in response.body
    assert "CONTENT_LENGTH" in caplog.text and repr(value) in caplog.text
    assert called == []
    assert_still_serving(mw)


@pytest.mark.parametrize("query, expected", [
    ("a=1&b=%C3%A9", b"a=1&b=%C3%A9"),
    ("q=caf\xe9", b"q=caf\xe9"),                 # PEP 3333: one latin-1 character per raw byte
    ("q=\xc3\xa9&r=\xff", b"q=\xc3\xa9&r=\xff"),  # UTF-8 bytes as the server hands them over
])
def test_non_ascii_query_string_is_latin1(middlewares, query, expected):
    mw = middlewares(echo_app)
    assert call(mw, make_environ("/", query=query)).body == b"GET " + expected + b" 0"


@pytest.mark.parametrize("query, char, index", [("q=\u20ac", "U+20AC", 2), ("\xe9\u0101", "U+0101", 1),
                                                ("x=\U0001F600", "U+1F600", 2)])
def test_query_string_beyond_latin1_is_a_clear_error(middlewares, impl, query, char, index):
    mw = middlewares(echo_app)
    message = re.escape("'QUERY_STRING' must hold one latin-1 character per byte (PEP 3333), "
                        "got %s at index %d" % (char, index))
    with pytest.raises(ValueError, match=message):
        mw(make_environ("/", query=query), lambda status, headers, exc_info=None: None)
    with pytest.raises(ValueError, match=message):
        impl.asgi_hot.build_scope(make_environ("/", query=query))
    assert_still_serving(mw)


def test_repeated_header_joined_by_the_server_is_one_header(middlewares):
    """A WSGI server joins 10,000 repeats of a header into one environ key: the scope has one
    header, with every value, built in one pass."""
    seen = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            seen.append(scope["headers"])
            await respond(send, b"ok")

    mw = middlewares(app)
    joined = ",".join("v%d" % i for i in range(10_000))
    assert call(mw, make_environ("/", HTTP_X_REPEATED=joined)).body == b"ok"
    repeated = [value for name, value in seen[0] if name == b"x-repeated"]
    assert repeated == [joined.encode()]


@pytest.mark.parametrize("count, served", [(1000, True), (1001, False), (10_000, False)])
def test_header_count_is_capped_with_431(middlewares, caplog, count, served):
    import a2wsgi.asgi as mod

    seen = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            seen.append(len(scope["headers"]))
            await respond(send, b"ok")

    mw = middlewares(app)
    environ = make_environ("/")
    environ.pop("HTTP_HOST", None)
    environ.update(("HTTP_X_H%d" % i, "v") for i in range(count))
    with caplog.at_level(logging.INFO, logger="a2wsgi"):
        response = call(mw, environ)
    assert count > mod.MAX_REQUEST_HEADERS or served
    if served:
        assert response.body == b"ok" and seen == [count]
    else:
        assert response.status == "431 Request Header Fields Too Large"
        assert b"more than 1000 headers" in response.body
        assert "%d request headers" % count in caplog.text
        assert seen == []
    assert call(mw, make_environ("/")).body == b"ok"


# ---------------------------------------------------------------------- from the ASGI app

def start_then(headers=(), status=200, body=b"ok", first=None, server_has_first=None):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/good":
            return await echo_app(scope, receive, send)
        await read_body(receive)
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        if first is not None:
            await send({"type": "http.response.body", "body": first, "more_body": True})
            while not server_has_first.is_set():
                await asyncio.sleep(0.0005)
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize("name, value", [
    (b"x-a", b"v\r\nSet-Cookie: evil=1"), (b"x-a", b"v\nx"), (b"x-a", b"v\rx"), (b"x-a", b"v\x00x"),
    (b"x-a\r\nx-b", b"v"), (b"x\na", b"v"), (b"x\x00a", b"v"), (b"Location", b"/a\r\n\r\n<html>"),
])
def test_response_header_injection_is_refused_never_sent(middlewares, caplog, name, value):
    app = start_then(headers=[(b"content-type", b"text/plain"), (name, value)])
    mw = middlewares(app)
    response = call(mw, make_environ("/"))
    assert [c[0] for c in response.calls] == ["500 Internal Server Error"]
    sent = [h for c in response.calls for h in c[1]]
    assert all("\r" not in n + v and "\n" not in n + v and "\0" not in n + v for n, v in sent)
    assert response.calls[0][2][0] is ValueError
    assert "contains CR, LF or NUL" in str(response.calls[0][2][1]) and repr(name) in caplog.text
    assert call(mw, make_environ("/good")).body == b"GET  0"


@pytest.mark.parametrize("body, type_name", [("text", "str"), (123, "int"), (None, "NoneType"),
                                             ([b"a"], "list")])
@pytest.mark.parametrize("started", [False, True], ids=["first-chunk", "after-a-chunk"])
def test_non_bytes_body_is_a_type_error(middlewares, body, type_name, started):
    server_has_first = threading.Event()
    mw = middlewares(start_then(body=body, first=b"first" if started else None,
                                server_has_first=server_has_first))
    response = call(mw, make_environ("/"), on_chunk=lambda r: server_has_first.set())
    if started:  # the first chunk and the headers went out: the error is raised to the server
        assert response.status == "200 OK" and response.body == b"first"
        error = response.error
    else:
        assert response.status == "500 Internal Server Error" and response.error is None
        error = response.calls[0][2][1]
    assert isinstance(error, TypeError)
    assert str(error) == "ASGI http.response.body 'body' must be bytes, got %s" % type_name
    assert call(mw, make_environ("/good")).body == b"GET  0"


@pytest.mark.parametrize("status", [99, 1000, 0, -200, 2000, "200", "200 OK", 200.0, None, True, b"200"])
def test_status_not_an_int_in_100_999_is_500(middlewares, status):
    mw = middlewares(start_then(status=status))
    response = call(mw, make_environ("/"))
    assert [c[0] for c in response.calls] == ["500 Internal Server Error"]
    error = response.calls[0][2][1]
    assert isinstance(error, ValueError) and "'status' must be" in str(error) and repr(status) in str(error)
    assert call(mw, make_environ("/good")).body == b"GET  0"


def test_status_missing_is_500(middlewares):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start"})

    response = call(middlewares(app), make_environ("/"))
    assert response.status == "500 Internal Server Error"
    assert "'status' must be an int, got NoneType None" in str(response.calls[0][2][1])
