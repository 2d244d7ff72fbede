"""PEP 3333 ``start_response``, ``write()``, ``close()`` and the response messages sent."""

import logging
import sys
import threading

import pytest

from test_wsgi_support import Script, call, http_scope, mw, run  # noqa: F401

# ---- hot functions -------------------------------------------------------------------------


def test_encode_response_headers(impl):
    encode = impl.wsgi_hot.encode_response_headers
    assert encode([("Content-Type", "text/plain"), ("X-Cafe", " v\xe9 \t"), ("Set-Cookie", "a=1"),
                   ("Set-Cookie", "b=2")]) == [
        (b"content-type", b"text/plain"), (b"x-cafe", b"v\xe9"), (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
    assert encode([]) == []
    assert encode((("A", ""),)) == [(b"a", b"")]
    assert encode([(" X-Pad\t", "v")]) == [(b"x-pad", b"v")]


@pytest.mark.parametrize(
    "headers, exc, named",
    [
        ([("X-Bad", "a\r\nInjected: 1")], ValueError, "X-Bad"),
        ([("X-Bad", "a\nb")], ValueError, "X-Bad"),
        ([("X-Bad", "a\0b")], ValueError, "X-Bad"),
        ([("X-B\rad", "v")], ValueError, "X-B"),
        ([("", "v")], ValueError, "empty"),
        ([(" ", "v")], ValueError, "empty"),
        ([("X-Euro", "\u20ac")], ValueError, "X-Euro"),
        ([(b"X-Bytes", "v")], TypeError, "X-Bytes"),
        ([("X-Bytes", b"v")], TypeError, "X-Bytes"),
        ([("X-One",)], TypeError, "X-One"),
        ([None], TypeError, "None"),
    ],
)
def test_encode_response_headers_refuses(impl, headers, exc, named):
    with pytest.raises(exc, match="WSGI response header") as info:
        impl.wsgi_hot.encode_response_headers(headers)
    assert named in str(info.value)


@pytest.mark.parametrize("status, code", [("200 OK", 200), ("404 Not Found", 404), ("599 ", 599),
                                          ("100 Continue", 100), ("999 X", 999)])
def test_parse_status(impl, status, code):
    assert impl.wsgi_hot.parse_status(status) == code


@pytest.mark.parametrize("status", ["200", "OK 200", " 200 OK", "20 OK", "2000 OK", "200\tOK",
                                    "200 OK\r\nX: y", "200 O\nK", "200 OK\0", "099 Low", "abc def",
                                    "", "\u0662\u0660\u0660 OK"])
def test_parse_status_refuses(impl, status):
    with pytest.raises(ValueError, match="NNN reason") as info:
        impl.wsgi_hot.parse_status(status)
    assert repr(status) in str(info.value)


def test_parse_status_type(impl):
    with pytest.raises(TypeError):
        impl.wsgi_hot.parse_status(b"200 OK")
    with pytest.raises(TypeError):
        impl.wsgi_hot.parse_status(200)


# ---- start_response through the middleware --------------------------------------------------


def test_list_response_sent_whole(mw, impl):
    def app(environ, start_response):
        start_response("201 Created", [("X-A", "1")])
        return [b"a", b"", b"bc"]

    script = run(call(mw(app)))
    assert script.status == 201
    assert script.headers == [(b"x-a", b"1")]
    assert script.body == b"abc" and script.complete


def test_empty_body_headers_sent_at_end(mw, impl):
    def app(environ, start_response):
        start_response("204 No Content", [])
        return iter([b"", b""])

    script = run(call(mw(app)))
    assert script.status == 204 and script.body == b"" and script.complete


def test_headers_go_with_first_nonempty_chunk_and_can_be_replaced_before(mw, impl):
    seen = []

    def app(environ, start_response):
        start_response("200 OK", [("X-Try", "1")])

        def gen():
            yield b""
            try:
                raise KeyError("boom")
            except KeyError:
                start_response("500 Oops", [("X-Try", "2")], sys.exc_info())
            seen.append("replaced")
            yield b"error page"

        return gen()

    run(call(mw(app), script=(script := Script())))
    assert seen == ["replaced"]
    assert script.status == 500 and script.headers == [(b"x-try", b"2")]
    assert script.body == b"error page" and script.complete


def test_own_error_response_sent_whole_and_logged(mw, impl, caplog):
    def app(environ, start_response):
        try:
            raise ValueError("app failure")
        except ValueError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
            return [b"sorry"]

    script = Script()
    with caplog.at_level(logging.ERROR, logger="a2wsgi"):
        run(call(mw(app), script=script, path="/page"))
    assert script.status == 500 and script.body == b"sorry" and script.complete
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and "GET /page" in logged[0].getMessage()
    assert logged[0].exc_info[1].args == ("app failure",)


def test_exc_info_after_headers_went_out_reraises_at_once(mw, impl, caplog):
    seen = []

    def app(environ, start_response):
        start_response("200 OK", [])

        def gen():
            yield b"first"
            try:
                raise LookupError("late")
            except LookupError:
                try:
                    start_response("500 Late", [], sys.exc_info())
                except LookupError as exc:
                    seen.append(exc)
                    raise

        return gen()

    script = Script()
    with pytest.raises(LookupError, match="late"):
        run(call(mw(app), script=script, path="/late"))
    assert len(seen) == 1 and seen[0].args == ("late",)
    assert script.status == 200 and script.body == b"first"
    assert not script.complete, "a response cut short must not look complete"


def test_second_start_response_without_exc_info_is_an_error(mw, impl):
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("201 Created", [])
        return [b""]

    script = Script()
    with pytest.raises(RuntimeError, match="second time"):
        run(call(mw(app), script=script))
    assert script.sent == []


def test_no_start_response_is_an_error(mw, impl):
    script = Script()
    with pytest.raises(RuntimeError, match="start_response"):
        run(call(mw(lambda environ, start_response: [b"x"]), script=script))
    assert script.sent == []


@pytest.mark.parametrize("status, headers, match", [
    ("200", [], "NNN reason"),
    ("200 OK", [("X-Evil", "a\r\nSet-Cookie: x=1")], "X-Evil"),
    ("200 OK", [("X-Nul", "a\0")], "X-Nul"),
    ("200 OK", [("X", 1)], "must be str"),
])
def test_bad_status_or_headers_refused_with_500(mw, impl, status, headers, match):
    def app(environ, start_response):
        start_response(status, headers)
        return [b"body"]

    script = Script()
    with pytest.raises((ValueError, TypeError), match=match):
        run(call(mw(app), script=script))
    assert script.sent == []
    assert b"body" not in script.body
    for message in script.sent:
        for name, value in message.get("headers", []):
            assert b"\r" not in value and b"\0" not in value


@pytest.mark.parametrize("body", [lambda: ["text"], lambda: [b"ok", 42], lambda: iter([b"ok", "text"])])
def test_non_bytes_body_chunks_are_a_type_error(mw, impl, body, caplog):
    def app(environ, start_response):
        start_response("200 OK", [])
        return body()

    script = Script()
    with caplog.at_level(logging.ERROR, logger="a2wsgi"):
        try:
            run(call(mw(app), script=script))
        except TypeError as exc:
            assert "must be bytes" in str(exc)
            assert not script.complete
        else:
            raise AssertionError("a non-bytes chunk must raise to the server")


def test_write_interleaves_with_the_iterable(mw, impl):
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"1")
        write(b"")
        write(b"2")

        def gen():
            write(b"3")
            yield b"4"
            write(b"5")
            yield b"6"

        return gen()

    script = run(call(mw(app)))
    assert script.body == b"123456" and script.complete


def test_write_then_list(mw, impl):
    def app(environ, start_response):
        start_response("200 OK", [])(b"head,")
        return [b"tail"]

    script = run(call(mw(app)))
    assert script.body == b"head,tail" and script.complete


def test_write_refuses_non_bytes(mw, impl):
    def app(environ, start_response):
        write = start_response("200 OK", [])
        write("text")
        return []

    with pytest.raises(TypeError, match="bytes"):
        run(call(mw(app)))


class Closing:
    """An iterable recording its close() calls and the threads they ran on."""

    def __init__(self, chunks, fail_at=None, close_error=None):
        self.chunks = chunks
        self.fail_at = fail_at
        self.close_error = close_error
        self.closed = []

    def __iter__(self):
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise RuntimeError("iteration failed")
            yield chunk

    def close(self):
        self.closed.append(threading.current_thread())
        if self.close_error is not None:
            raise self.close_error


@pytest.mark.parametrize("fail_at", [None, 0, 2])
def test_close_called_exactly_once_on_the_worker(mw, impl, fail_at):
    result = Closing([b"a", b"b", b"c"], fail_at=fail_at)

    def app(environ, start_response):
        start_response("200 OK", [])
        return result

    try:
        run(call(mw(app)))
    except RuntimeError:
        assert fail_at is not None
    assert len(result.closed) == 1
    assert result.closed[0].name == "a2wsgi-worker"


def test_close_error_is_logged_not_swallowed(mw, impl, caplog):
    result = Closing([b"a"], close_error=OSError("cleanup failed"))

    def app(environ, start_response):
        start_response("200 OK", [])
        return result

    with caplog.at_level(logging.ERROR, logger="a2wsgi"):
        script = run(call(mw(app), method="POST", path="/c"))
    assert script.body == b"a" and script.complete
    assert len(result.closed) == 1
    records = [r for r in caplog.records if r.name == "a2wsgi"]
    assert any("POST /c" in r.getMessage() and "close()" in r.getMessage() for r in records)
    assert records[0].exc_info[1].args == ("cleanup failed",)


def test_app_error_before_response_sends_nothing_and_raises(mw, impl):
    def app(environ, start_response):
        raise ZeroDivisionError("early")

    script = Script()
    with pytest.raises(ZeroDivisionError):
        run(call(mw(app), script=script))
    assert script.sent == []


def test_tuple_and_large_lists(mw, impl):
    big = [b"x" * 50000] * 5

    def app(environ, start_response):
        start_response("200 OK", [])
        return tuple(big) if environ["PATH_INFO"] == "/t" else big

    middleware = mw(app)
    for path in ("/t", "/l"):
        script = run(call(middleware, path=path))
        assert script.body == b"".join(big) and script.complete
