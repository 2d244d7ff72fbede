"""Responses: status lines, headers, streaming with bounded buffering, pathsend, and messages a
WSGI server cannot carry (ASGI HTTP spec "Response Start/Body", "Path Send", "Trailers")."""

import threading

import pytest

from test_asgi_support import call, make_environ, middlewares, respond  # noqa: F401


@pytest.mark.parametrize("code, line", [
    (200, "200 OK"), (404, "404 Not Found"), (418, "418 I'm a Teapot"), (103, "103 Early Hints"),
    (299, "299 Success"), (199, "199 Informational"), (399, "399 Redirection"),
    (499, "499 Client Error"), (599, "599 Server Error"), (600, "600 Unknown"), (999, "999 Unknown"),
])
def test_status_line_every_code(impl, code, line):
    assert impl.asgi_hot.status_line(code) == line


@pytest.mark.parametrize("code", [99, 0, -200, 1000, "200", 200.0, None, True])
def test_status_line_refuses(impl, code):
    with pytest.raises(ValueError, match="status"):
        impl.asgi_hot.status_line(code)


def test_status_line_every_three_digit_code(impl):
    for code in range(100, 1000):
        line = impl.asgi_hot.status_line(code)
        assert line.startswith("%d " % code) and len(line) > 4


def test_response_headers_latin1(impl):
    assert impl.asgi_hot.decode_response_headers(
        [(b"content-type", b"text/plain"), (b"x-cafe", b"\xff\xe9")]) == [
        ("content-type", "text/plain"), ("x-cafe", "\u00ff\u00e9")]


@pytest.mark.parametrize("bad", [b"a\rb", b"a\nb", b"a\x00b", b"\r\n"])
def test_response_headers_refuse_cr_lf_nul(impl, bad):
    with pytest.raises(ValueError, match="x-evil"):
        impl.asgi_hot.decode_response_headers([(b"x-evil", bad)])
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        impl.asgi_hot.decode_response_headers([(b"x-evil" + bad, b"v")])


@pytest.mark.parametrize("bad, exc", [([(b"", b"v")], ValueError), ([("name", b"v")], TypeError),
                                      ([(b"name", "v")], TypeError), ([(b"a", b"b", b"c")], TypeError),
                                      ([b"ab"], TypeError), ([None], TypeError)])
def test_response_headers_refuse_malformed(impl, bad, exc):
    with pytest.raises(exc):
        impl.asgi_hot.decode_response_headers(bad)


def test_hop_by_hop_headers_dropped(impl):
    assert impl.asgi_hot.decode_response_headers(
        [(b"Connection", b"close"), (b"transfer-encoding", b"chunked"), (b"x-a", b"1"),
         (b"keep-alive", b"5"), (b"upgrade", b"h2c")]) == [("x-a", "1")]


def test_one_chunk_response_is_a_one_item_list(middlewares):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            await respond(send, b"hello", status=201, headers=[(b"x-a", b"1")])

    response = call(middlewares(app), make_environ("/"))
    assert response.chunks == [b"hello"]
    assert response.calls == [("201 Created", [("x-a", "1")], None)]
    # Usually a one-item list, so that a server can set Content-Length. When the WSGI thread is
    # scheduled only after the app sent its last body but before its task was marked done (a
    # loaded machine), the middleware itself is the iterable instead; both are correct.
    assert response.result == [b"hello"] or not isinstance(response.result, list)


def test_unknown_status_code_passes_through(middlewares):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            await respond(send, b"", status=299)

    assert call(middlewares(app), make_environ("/")).status == "299 Success"


def test_header_injection_refused_with_500(middlewares, caplog):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            await respond(send, b"x", headers=[(b"set-cookie", b"a=1\r\nx-injected: 1")])

    response = call(middlewares(app), make_environ("/"))
    assert response.status.startswith("500 ")
    assert "set-cookie" in caplog.text and "CR, LF or NUL" in caplog.text


def test_streaming_in_order_with_bounded_buffering(middlewares):
    import a2wsgi.asgi as mod

    sent = [0]
    total = 2000
    done = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(total):
            await send({"type": "http.response.body", "body": b"%06d" % i, "more_body": True})
            sent[0] += 1
        await send({"type": "http.response.body", "body": b""})
        done.set()

    held = []

    def on_chunk(response):
        held.append(sent[0] - len(response.chunks))

    response = call(middlewares(app), make_environ("/"), on_chunk=on_chunk)
    assert response.body == b"".join(b"%06d" % i for i in range(total))
    assert len(response.chunks) == total
    assert max(held) <= 2 * mod.HELD_CHUNKS + 1


def test_streaming_large_chunks_bounded_by_bytes(middlewares):
    import a2wsgi.asgi as mod

    sent = [0]
    chunk = b"m" * (256 * 1024)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(64):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent[0] += 1
        await send({"type": "http.response.body", "body": b""})

    held_bytes = []
    response = call(middlewares(app), make_environ("/"),
                    on_chunk=lambda r: held_bytes.append((sent[0] - len(r.chunks)) * len(chunk)))
    assert len(response.body) == 64 * len(chunk)
    assert max(held_bytes) <= 2 * mod.HELD_BYTES + len(chunk)


def test_pathsend_through_file_wrapper(middlewares, tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"F" * 100_000)

    class Wrapper:
        def __init__(self, f, block):
            self.f, self.block = f, block

        def __iter__(self):
            return iter(lambda: self.f.read(self.block), b"")

        def close(self):
            self.f.close()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100000")]})
        await send({"type": "http.response.pathsend", "path": str(path)})

    response = call(middlewares(app), make_environ("/", **{"wsgi.file_wrapper": Wrapper}))
    assert isinstance(response.result, Wrapper)
    assert response.body == path.read_bytes()


def test_pathsend_without_file_wrapper(middlewares, tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 1000)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    environ = make_environ("/")
    environ.pop("wsgi.file_wrapper", None)
    response = call(middlewares(app), environ)
    assert response.status == "200 OK" and response.body == path.read_bytes()


def test_pathsend_missing_file_is_500(middlewares, tmp_path):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.pathsend", "path": str(tmp_path / "missing")})

    assert call(middlewares(app), make_environ("/")).status.startswith("500 ")


# ``"trailers": True`` on its own is accepted (issue 13 rule 10): see test_asgi_invisible.py
@pytest.mark.parametrize("messages, match", [
    ([{"type": "http.response.start", "status": 200, "headers": []},
      {"type": "http.response.body", "body": b"x", "more_body": True},
      {"type": "http.response.trailers", "headers": []}], "http.response.trailers"),
    ([{"type": "http.response.start", "status": 200, "headers": []},
      {"type": "websocket.send", "text": "x"}], "websocket.send"),
    ([{"type": "http.response.body", "body": b"x"}], "before http.response.start"),
    ([{"status": 200}], "'type'"),
    ([{"type": "http.response.start", "status": 200, "headers": []},
      {"type": "http.response.body", "body": "text"}], "must be bytes"),
    ([{"type": "http.response.start", "status": 200, "headers": []},
      {"type": "http.response.start", "status": 200, "headers": []}], "twice"),
    ([{"type": "http.response.start", "status": 200, "headers": []},
      {"type": "http.response.body", "body": b"x"},
      {"type": "http.response.body", "body": b"y"}], "after the response body was complete"),
])
def test_messages_a_wsgi_server_cannot_carry_give_a_clear_error(middlewares, caplog, messages, match):
    raised = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        try:
            for message in messages:
                await send(message)
        except Exception as exc:
            raised.append(exc)
            raise

    response = call(middlewares(app), make_environ("/"))
    assert raised and match in str(raised[0])
    if len(messages) == 3 and messages[1].get("body") == b"x" and not messages[1].get("more_body"):
        assert response.body == b"x"  # the response was complete; the error is logged only
    elif messages[-1].get("type") == "http.response.trailers":
        # issue 13 rule 2: the chunk, then the error raised to the server, every time
        assert response.status == "200 OK" and response.body == b"x" and response.error is raised[0]
    else:
        assert response.status.startswith("500 ")
    assert match in caplog.text


def test_bytearray_and_memoryview_bodies(middlewares):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        buf = bytearray(b"abc")
        await send({"type": "http.response.body", "body": buf, "more_body": True})
        buf[:] = b"zzz"  # the app may reuse its buffer
        await send({"type": "http.response.body", "body": memoryview(b"def")})

    assert call(middlewares(app), make_environ("/")).body == b"abcdef"
