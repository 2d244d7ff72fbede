"""Request bodies: read on the WSGI thread, small ones at once, others in pieces when the app asks
(ASGI HTTP spec "Request - receive event"; PEP 3333 ``wsgi.input``, ``wsgi.input_terminated``)."""

import io

import pytest

from test_asgi_support import call, make_environ, middlewares, read_body, respond  # noqa: F401


class CountingInput(io.BytesIO):
    """``wsgi.input`` that counts reads and can end early or fail."""

    def __init__(self, data, fail_after=None):
        super().__init__(data)
        self.reads = 0
        self.fail_after = fail_after

    def read(self, size=-1):
        self.reads += 1
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise OSError("connection reset while reading")
        return super().read(size)


def echo_app(record):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body, messages = await read_body(receive)
        record.append(messages)
        if body is None:
            record.append("disconnect")
            return
        await respond(send, body)

    return app


def test_small_body_read_at_once(middlewares):
    record = []
    data = b"x" * 1000
    response = call(middlewares(echo_app(record)), make_environ("/", "POST", data))
    assert response.body == data
    assert record[0] == [{"type": "http.request", "body": data, "more_body": False}]


def test_large_body_streamed_in_pieces(middlewares):
    import a2wsgi.asgi as mod

    record = []
    data = bytes(range(256)) * 4096  # 1 MiB
    response = call(middlewares(echo_app(record)), make_environ("/", "POST", data))
    assert response.body == data
    messages = record[0]
    assert len(messages) == len(data) // mod.READ_SIZE
    assert all(len(m["body"]) <= mod.READ_SIZE for m in messages)
    assert [m["more_body"] for m in messages] == [True] * (len(messages) - 1) + [False]


def test_input_terminated_read_to_eof(middlewares):
    record = []
    data = b"chunked upload " * 20000
    environ = make_environ("/", "POST", data, content_length=None, **{"wsgi.input_terminated": True})
    response = call(middlewares(echo_app(record)), environ)
    assert response.body == data
    assert record[0][-1]["more_body"] is False


def test_input_terminated_empty(middlewares):
    record = []
    environ = make_environ("/", "POST", b"", content_length=None, **{"wsgi.input_terminated": True})
    assert call(middlewares(echo_app(record)), environ).body == b""
    assert record[0] == [{"type": "http.request", "body": b"", "more_body": False}]


def test_no_length_no_terminated_input_is_empty(middlewares):
    record = []
    stream = CountingInput(b"not to be read")
    environ = make_environ("/", "POST", stream, content_length=None)
    assert call(middlewares(echo_app(record)), environ).status == "200 OK"
    assert record[0] == [{"type": "http.request", "body": b"", "more_body": False}]
    assert stream.reads == 0


@pytest.mark.parametrize("declared", [100, 200_000], ids=["small", "streamed"])
def test_short_input_is_disconnect_never_truncated_body(middlewares, declared):
    record = []
    stream = CountingInput(b"y" * 70)
    environ = make_environ("/", "POST", stream, content_length=declared)
    call(middlewares(echo_app(record)), environ)
    messages = record[0]
    assert messages[-1] == {"type": "http.disconnect"}
    assert all(m.get("more_body") for m in messages[:-1])
    assert record[1] == "disconnect"
    assert stream.reads <= 3  # no spin on an input that keeps returning b""


def test_input_error_is_disconnect(middlewares):
    record = []
    stream = CountingInput(b"z" * 300_000, fail_after=65536)
    call(middlewares(echo_app(record)), make_environ("/", "POST", stream, content_length=300_000))
    assert record[0][-1] == {"type": "http.disconnect"}


def test_body_read_only_when_the_app_asks(middlewares):
    import a2wsgi.asgi as mod

    stream = CountingInput(b"q" * 2_000_000)
    pieces_seen = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        message = await receive()
        pieces_seen.append(stream.reads)
        await respond(send, b"%d" % len(message["body"]))

    response = call(middlewares(app), make_environ("/", "POST", stream))
    assert response.body == b"65536"
    # the first hop reads READ_AHEAD pieces; the prefetch after it at most READ_AHEAD more
    assert stream.reads <= 2 * mod.READ_AHEAD


def test_app_that_never_reads_leaves_the_input_alone(middlewares):
    stream = CountingInput(b"q" * 2_000_000)

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await respond(send, b"ignored")

    assert call(middlewares(app), make_environ("/", "POST", stream)).body == b"ignored"
    assert stream.reads == 0


def test_receive_after_response_is_disconnect(middlewares):
    seen = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await read_body(receive)
        await respond(send, b"done")
        seen.append(await receive())

    call(middlewares(app), make_environ("/", "POST", b"abc"))
    assert seen == [{"type": "http.disconnect"}]
