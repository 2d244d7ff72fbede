"""WSGIMiddleware given bad input, from the ASGI server (the scope) or from the WSGI app (its
status, headers and body): each gets a clear error that names what was wrong, nothing malformed
reaches the server, and the same middleware serves the next request (issue 7, W->A)."""

import logging
import re

import pytest

from test_wsgi_support import Script, http_scope, mw, other_tasks, run  # noqa: F401


def echo(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%s %s %d" % (environ["REQUEST_METHOD"].encode(), environ["PATH_INFO"].encode(), len(body))]


async def serve(middleware, scope=None, body=b"", **scope_args):
    script = Script(body=body)
    await middleware(scope if scope is not None else http_scope(**scope_args), script.receive, script.send)
    return script


def assert_still_serving(middleware):
    async def go():
        script = await serve(middleware, method="POST", path="/next", body=b"12345")
        assert other_tasks() == set()
        return script

    script = run(go())
    assert script.status == 200 and script.complete and script.body == b"POST /next 5"


def failing(middleware, scope, exc, match):
    """Serves ``scope``; the error must reach the server (issue 13, WSGIMiddleware rule 1: nothing
    is sent, the server or an outer middleware answers). Returns the script."""
    script = Script()

    async def go():
        with pytest.raises(exc, match=match):
            await middleware(scope, script.receive, script.send)
        assert other_tasks() == set()

    run(go())
    return script


def assert_500(script):
    """Nothing went out: the error raised to the server is what answers (with its own 500)."""
    assert script.sent == []


# ---------------------------------------------------------------------- from the ASGI server

def test_scope_without_type_names_the_key(mw):
    middleware = mw(echo)
    scope = http_scope()
    del scope["type"]
    script = failing(middleware, scope, KeyError, "no 'type' key")
    assert script.sent == []
    assert_still_serving(middleware)


@pytest.mark.parametrize("key", ["method", "path"])
def test_scope_without_a_required_key_is_500_naming_it(mw, key):
    middleware = mw(echo)
    scope = http_scope()
    del scope[key]
    assert_500(failing(middleware, scope, KeyError, "ASGI HTTP scope has no '%s' key" % key))
    assert_still_serving(middleware)


@pytest.mark.parametrize("changes, exc, match", [
    ({"method": b"GET"}, TypeError, "'method' must be str, got bytes"),
    ({"path": b"/"}, TypeError, "'path' must be str, got bytes"),
    ({"query_string": "a=1"}, TypeError, "'query_string' must be bytes, got str"),
    ({"root_path": None}, TypeError, "'root_path' must be str, got NoneType"),
    ({"scheme": 1}, TypeError, "'scheme' must be str, got int"),
    ({"path": "/\ud800"}, ValueError, "'path' is not encodable as UTF-8"),
])
def test_scope_values_of_the_wrong_type_are_500_naming_the_key(mw, changes, exc, match):
    middleware = mw(echo)
    assert_500(failing(middleware, dict(http_scope(), **changes), exc, match))
    assert_still_serving(middleware)


@pytest.mark.parametrize("headers, match", [
    ([("host", "example.com")], r"pair of bytes, got \(str, str\)"),
    ([(b"host", "example.com")], r"pair of bytes, got \(bytes, str\)"),
    ([(b"host",)], r"pair of bytes, got \(b'host',\)"),
    ([b"host: example.com"], "pair of bytes, got b'host: example.com'"),
    ([(b"x-a", b"1"), None], "pair of bytes, got None"),
    ([(b"", b"v")], "empty name"),
    ([[b"host", bytearray(b"x")]], r"pair of bytes, got \(bytes, bytearray\)"),
])
def test_headers_that_are_not_byte_pairs_are_500_naming_them(mw, headers, match):
    middleware = mw(echo)
    exc = ValueError if match == "empty name" else TypeError
    assert_500(failing(middleware, http_scope(headers=headers), exc, match))
    assert_still_serving(middleware)


class CountingHeaders(list):
    """Request headers that count how many pairs were taken from them, in how many passes."""

    def __init__(self, items):
        super().__init__(items)
        self.passes = 0
        self.taken = 0

    def __iter__(self):
        self.passes += 1
        for item in list.__iter__(self):
            self.taken += 1
            yield item


@pytest.mark.parametrize("count", [1000, 1001, 10_000])
@pytest.mark.parametrize("shape", [list, tuple, CountingHeaders])
def test_repeated_headers_capped_with_431_before_any_is_read(mw, caplog, count, shape):
    """10,000 repeats of one header get a 431 without the headers being iterated; up to 1000
    are read in one pass (a count, so linear time) and joined in order."""
    import a2wsgi.wsgi as wsgi

    calls = []

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/next":
            return echo(environ, start_response)
        calls.append(environ["HTTP_X_REPEATED"])
        start_response("200 OK", [])
        return [b"ok"]

    middleware = mw(app)
    headers = shape([(b"x-repeated", b"v%d" % i) for i in range(count)])
    scope = http_scope()
    scope["headers"] = headers
    with caplog.at_level(logging.INFO, logger="a2wsgi"):
        script = run(serve(middleware, scope))
    if count <= wsgi.MAX_REQUEST_HEADERS:
        assert script.status == 200 and script.body == b"ok"
        assert calls == [",".join("v%d" % i for i in range(count))]
        if shape is CountingHeaders:
            assert (headers.passes, headers.taken) == (1, count)
    else:
        assert script.status == 431 and script.complete and calls == []
        assert script.body == b"Request Header Fields Too Large: more than 1000 headers"
        assert "%d request headers" % count in caplog.text
        if shape is CountingHeaders:
            assert (headers.passes, headers.taken) == (0, 0)
    assert_still_serving(middleware)


def test_headers_without_a_length_are_read_in_one_pass(mw):
    """An iterable with no ``len()`` is not capped (it cannot be counted without reading it);
    it is still read once, in order."""
    seen = []

    def app(environ, start_response):
        seen.append(environ["HTTP_X_N"])
        start_response("200 OK", [])
        return [b"ok"]

    middleware = mw(app)
    scope = http_scope()
    scope["headers"] = iter([(b"x-n", b"%d" % i) for i in range(3)])
    script = run(serve(middleware, scope))
    assert script.body == b"ok" and seen == ["0,1,2"]


# ---------------------------------------------------------------------- from the WSGI app

INJECTIONS = [
    ("X-A", "v\r\nSet-Cookie: evil=1"), ("X-A", "v\nx"), ("X-A", "v\rx"), ("X-A", "v\x00x"),
    ("X-A\r\nX-B", "v"), ("X\na", "v"), ("X\x00a", "v"), ("Location", "/a\r\n\r\n<html>"),
]


def app_with(status="200 OK", headers=(), body=(b"ok",), then=None):
    """A WSGI app answering with ``status``, ``headers`` and ``body`` (an iterable of chunks), or,
    on ``/next``, a valid echo."""
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/next":
            return echo(environ, start_response)
        start_response(status, list(headers))
        return body() if callable(body) else list(body)

    return app


@pytest.mark.parametrize("name, value", INJECTIONS)
@pytest.mark.parametrize("streamed", [False, True], ids=["list", "generator"])
def test_response_header_injection_is_refused_never_sent(mw, name, value, streamed):
    def gen():
        yield b"ok"

    middleware = mw(app_with(headers=[("Content-Type", "text/plain"), (name, value)],
                             body=gen if streamed else (b"ok",)))
    script = failing(middleware, http_scope(), ValueError,
                     re.escape("contains CR, LF or NUL: %r" % ((name, value),)))
    assert_500(script)
    assert_still_serving(middleware)


@pytest.mark.parametrize("status", ["200 OK\r\nSet-Cookie: evil=1", "200 O\nK", "200 \x00"])
def test_status_line_injection_is_refused(mw, status):
    middleware = mw(app_with(status=status))
    assert_500(failing(middleware, http_scope(), ValueError, re.escape(repr(status))))
    assert_still_serving(middleware)


@pytest.mark.parametrize("status", ["200", "200OK", "", "OK", "abc OK", "2x0 OK", "20 OK", "2000 OK",
                                    " 200 OK", "099 Low", "\uff12\uff10\uff10 OK"])
def test_status_without_reason_or_with_a_non_numeric_code_is_500(mw, status):
    middleware = mw(app_with(status=status))
    assert_500(failing(middleware, http_scope(), ValueError,
                       re.escape('WSGI status must be "NNN reason" (e.g. "200 OK"), got %r' % (status,))))
    assert_still_serving(middleware)


@pytest.mark.parametrize("status", [200, b"200 OK", None])
def test_status_not_str_is_500(mw, status):
    middleware = mw(app_with(status=status))
    assert_500(failing(middleware, http_scope(), TypeError, "WSGI status must be str, got %s"
                       % type(status).__name__))
    assert_still_serving(middleware)


@pytest.mark.parametrize("chunk", ["text", 42, None, bytearray(b"ba"), memoryview(b"mv")])
@pytest.mark.parametrize("shape", ["list", "first-of-generator", "write"])
def test_non_bytes_body_before_anything_was_sent_is_500(mw, chunk, shape):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/next":
            return echo(environ, start_response)
        write = start_response("200 OK", [])
        if shape == "write":
            write(chunk)
            return []
        if shape == "list":
            return [b"", chunk]
        return iter([b"", chunk])

    middleware = mw(app)
    what = "WSGI write() needs bytes" if shape == "write" else "WSGI response body items must be bytes"
    assert_500(failing(middleware, http_scope(), TypeError, re.escape("%s, got %s" % (what, type(chunk).__name__))))
    assert_still_serving(middleware)


@pytest.mark.parametrize("chunk", ["text", 42, None])
def test_non_bytes_body_after_the_headers_went_out_is_raised_and_cut_short(mw, chunk):
    """Issue 13, WSGIMiddleware rule 2: the chunk before is sent, then the error reaches the
    server; the response never looks complete."""
    def gen():
        yield b"first"
        yield chunk

    middleware = mw(app_with(body=gen))
    script = Script()

    async def go():
        with pytest.raises(TypeError, match="must be bytes, got %s" % type(chunk).__name__):
            await middleware(http_scope(), script.receive, script.send)

    run(go())
    assert script.status == 200 and script.body == b"first" and not script.complete
    assert_still_serving(middleware)
