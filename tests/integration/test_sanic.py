"""Sanic (its ASGI mode) through ASGIMiddleware, in-process: a WSGI client (werkzeug's) calls the
middleware; Sanic's lifespan (before_server_start/after_server_stop) runs through it."""

import pytest

sanic = pytest.importorskip("sanic")
werkzeug_test = pytest.importorskip("werkzeug.test")
_names = __import__("itertools").count()


def _make_app():
    from sanic import Sanic, response

    app = Sanic("a2wsgi_matrix_%d" % next(_names))  # Sanic refuses a name twice in one process
    app.config.TOUCHUP = False
    events = []

    @app.before_server_start
    async def started(app):
        events.append("startup")

    @app.get("/hello")
    async def hello(request):
        return response.text("hello %s" % events.count("startup"))

    @app.post("/echo")
    async def echo(request):
        return response.raw(request.body, headers={"X-Length": str(len(request.body))})

    @app.get("/stream")
    async def stream(request):
        resp = await request.respond(content_type="text/plain")
        for n in range(5):
            await resp.send("line %d\n" % n)
        await resp.eof()

    @app.get("/error")
    async def error(request):
        raise ValueError("boom")

    return app, events


def test_sanic_through_asgimiddleware(impl):
    from a2wsgi import ASGIMiddleware

    app, events = _make_app()
    middleware = ASGIMiddleware(app)
    try:
        client = werkzeug_test.Client(middleware)
        resp = client.get("/hello")
        assert (resp.status_code, resp.data) == (200, b"hello 1")
        payload = bytes(range(256)) * 4096
        resp = client.post("/echo", data=payload)
        assert resp.status_code == 200 and resp.data == payload and resp.headers["X-Length"] == str(len(payload))
        resp = client.get("/stream")
        assert resp.data == b"".join(b"line %d\n" % n for n in range(5))
        resp = client.get("/error")
        assert resp.status_code == 500
        assert client.get("/hello").data == b"hello 1"
    finally:
        middleware.close()
    assert events == ["startup"]
