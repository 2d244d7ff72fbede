"""wsgi.input (``Body``): streamed, never accumulated, correct across chunk boundaries.

Also the request body through the middleware: read-ahead bounded, chunked uploads whole,
``wsgi.input_terminated``, and a disconnect during the upload raising an ``OSError`` subclass.
"""

import asyncio
import io

import pytest

from test_wsgi_support import HANG_GUARD, Script, call, http_scope, mw, run  # noqa: F401

PIECES = [b"ab\ncd", b"", b"e\n", b"\n\nfgh", b"ijk\nlm\n", b"no"]
CONTENT = b"".join(PIECES)


def make_body(impl, pieces, log=None):
    feed = [p for p in pieces if p] + [b""]

    def fetch():
        if log is not None:
            log.append("fetch")
        return feed.pop(0)

    return impl.wsgi_hot.Body(fetch)


def test_body_is_the_class_a2wsgi_wsgi_exposes(impl):
    import a2wsgi.wsgi

    assert a2wsgi.wsgi.Body is impl.wsgi_hot.Body
    assert a2wsgi.wsgi.build_environ is impl.wsgi_hot.build_environ


@pytest.mark.parametrize("size", [None, -1, 0, 1, 2, 3, 5, 7, 100])
def test_read_sizes_match_bytesio(impl, size):
    body = make_body(impl, PIECES)
    ref = io.BytesIO(CONTENT)
    while True:
        got = body.read(size)
        assert got == ref.read(size)
        if not got:
            if size == 0:
                assert body.read() == ref.read()
            break


def test_read_no_argument_reads_all(impl):
    assert make_body(impl, PIECES).read() == CONTENT


@pytest.mark.parametrize("limit", [None, -1, 1, 2, 3, 4, 6, 50])
def test_readline_matches_bytesio(impl, limit):
    body = make_body(impl, PIECES)
    ref = io.BytesIO(CONTENT)
    for _ in range(40):
        assert body.readline(limit) == ref.readline(limit)
    assert body.readline() == b""


def test_readline_zero_reads_nothing(impl):
    log = []
    body = make_body(impl, PIECES, log)
    assert body.readline(0) == b""
    assert log == []


@pytest.mark.parametrize("hint", [None, -1, 0, 1, 3, 4, 5, 9, 1000])
def test_readlines_hint_in_bytes_as_io_does(impl, hint):
    body = make_body(impl, PIECES)
    ref = io.BufferedReader(io.BytesIO(CONTENT))
    assert body.readlines(hint) == ref.readlines(hint)
    assert body.read() == ref.read()


def test_iteration_yields_lines(impl):
    assert list(make_body(impl, PIECES)) == io.BytesIO(CONTENT).readlines()
    body = make_body(impl, PIECES)
    assert iter(body) is body


def test_mixed_calls_across_boundaries(impl):
    body = make_body(impl, PIECES)
    ref = io.BytesIO(CONTENT)
    for op, arg in [("read", 1), ("readline", None), ("read", 4), ("readline", 2), ("readlines", 2),
                    ("read", 3), ("readline", -1), ("read", None)]:
        assert getattr(body, op)(arg) == getattr(ref, op)(arg), (op, arg)


def test_streamed_not_accumulated(impl):
    """A piece is fetched only when the buffered data is used up."""
    log = []
    body = make_body(impl, [b"aaaa", b"bbbb", b"cccc"], log)
    assert body.read(2) == b"aa" and log == ["fetch"]
    assert body.read(2) == b"aa" and log == ["fetch"]
    assert body.read(3) == b"bbb" and log == ["fetch"] * 2
    assert body.readline() == b"bcccc" and log == ["fetch"] * 4
    assert body.read() == b"" and log == ["fetch"] * 4  # never called again after the end


def test_fetch_errors_propagate(impl):
    class Gone(OSError):
        pass

    feed = [b"abc"]

    def fetch():
        if feed:
            return feed.pop()
        raise Gone("client went away")

    body = impl.wsgi_hot.Body(fetch)
    assert body.read(2) == b"ab"
    with pytest.raises(Gone):
        body.read()
    with pytest.raises(Gone):
        body.readline()


def test_bad_arguments(impl):
    body = make_body(impl, PIECES)
    for method in (body.read, body.readline, body.readlines):
        with pytest.raises(TypeError):
            method("1")
        with pytest.raises(TypeError):
            method(1.5)
    assert body.read(10 ** 30) == CONTENT
    with pytest.raises(TypeError):
        impl.wsgi_hot.Body(None)
    with pytest.raises(TypeError):
        impl.wsgi_hot.Body(lambda: "text").read()


# ---- through the middleware ----------------------------------------------------------------


def upload(pieces):
    messages = [{"type": "http.request", "body": p, "more_body": True} for p in pieces]
    messages.append({"type": "http.request", "body": b"", "more_body": False})
    return messages


def test_chunked_upload_read_whole(mw, impl):
    seen = {}

    def app(environ, start_response):
        seen["terminated"] = environ["wsgi.input_terminated"]
        seen["length"] = environ.get("CONTENT_LENGTH")
        data = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [data]

    pieces = [bytes([i]) * (1000 + i) for i in range(50)]
    script = run(call(mw(app), script=Script(upload(pieces)), method="POST",
                      headers=[(b"transfer-encoding", b"chunked")]))
    assert script.status == 200
    assert script.body == b"".join(pieces)
    assert seen == {"terminated": True, "length": None}


def test_every_reading_style_through_middleware(mw, impl):
    lines = [b"line %d\n" % i for i in range(300)]
    content = b"".join(lines)
    pieces = [content[i:i + 97] for i in range(0, len(content), 97)]

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        out = [stream.readline(), stream.readline(3), stream.read(10)]
        out.extend(stream.readlines(50))
        out.append(next(iter(stream)))
        out.extend(stream)
        start_response("200 OK", [])
        return out

    script = run(call(mw(app), script=Script(upload(pieces)), method="POST"))
    assert script.body == content


def test_read_ahead_is_bounded(mw, impl, monkeypatch):
    """The loop reads ahead of a slow app by a bounded amount, not the whole body: READ_AHEAD_BYTES
    before a worker is taken, twice that while the app runs."""
    import a2wsgi.wsgi

    monkeypatch.setattr(a2wsgi.wsgi, "READ_AHEAD_BYTES", 4096)
    piece = b"x" * 1024
    total = 200
    script = Script(upload([piece] * total))
    ahead = []

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        consumed = 0
        while True:
            data = stream.read(512)
            if not data:
                break
            consumed += len(data)
            ahead.append(script.received * 1024 - consumed)
        start_response("200 OK", [])
        return [b"%d" % consumed]

    run(call(mw(app), script=script, method="POST"))
    assert script.body == b"%d" % (total * 1024)
    assert max(ahead) <= 2 * 4096 + 2 * 1024


def test_disconnect_during_upload_raises_oserror(mw, impl, monkeypatch):
    import a2wsgi.wsgi

    # the first piece fills the read-ahead, so the app runs before the body is complete
    monkeypatch.setattr(a2wsgi.wsgi, "READ_AHEAD_BYTES", 6)
    seen = {}

    def app(environ, start_response):
        stream = environ["wsgi.input"]
        seen["first"] = stream.read(3)
        try:
            stream.read()
        except OSError as exc:
            seen["error"] = exc
            try:
                stream.read(1)
            except OSError as again:
                seen["again"] = again
            raise
        start_response("200 OK", [])
        return [b"never"]

    messages = [{"type": "http.request", "body": b"abcdef", "more_body": True},
                {"type": "http.disconnect"}]
    script = run(call(mw(app), script=Script(messages), method="POST"))
    assert seen["first"] == b"abc"
    assert isinstance(seen["error"], OSError)
    assert type(seen["error"]).__name__ == "ClientDisconnected"
    assert isinstance(seen["again"], OSError)
    assert script.sent == []


def test_disconnect_before_body_does_not_run_app(mw, impl):
    calls = []

    def app(environ, start_response):
        calls.append(1)
        start_response("200 OK", [])
        return [b""]

    script = run(call(mw(app), script=Script([{"type": "http.disconnect"}])))
    assert calls == [] and script.sent == []


def test_app_not_reading_a_large_body(mw, impl):
    def app(environ, start_response):
        start_response("413 Payload Too Large", [("Content-Length", "0")])
        return []

    script = run(call(mw(app), script=Script(upload([b"y" * 65536] * 100)), method="POST"))
    assert script.status == 413
    assert script.complete


def test_body_read_later_from_the_iterable(mw, impl):
    def app(environ, start_response):
        start_response("200 OK", [])
        stream = environ["wsgi.input"]

        def gen():
            for line in stream:
                yield line.upper()

        return gen()

    script = run(call(mw(app), script=Script(upload([b"a\nb", b"\nc\n"])), method="POST"))
    assert script.body == b"A\nB\nC\n"


def test_slow_client_pieces_arrive_in_order(mw, impl):
    async def later(piece, more=True):
        await asyncio.sleep(0.001)
        return {"type": "http.request", "body": piece, "more_body": more}

    pieces = [b"%03d," % i for i in range(100)]
    messages = [lambda p=p: later(p) for p in pieces] + [lambda: later(b"", False)]

    def app(environ, start_response):
        start_response("200 OK", [])
        return [environ["wsgi.input"].read()]

    script = run(call(mw(app), script=Script(messages), method="POST"), HANG_GUARD)
    assert script.body == b"".join(pieces)
