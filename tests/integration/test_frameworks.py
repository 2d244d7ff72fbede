"""Each framework on the compatibility list that CI tests, through the middleware on its side.

WSGI side (WSGIMiddleware): Bottle, Falcon, Pyramid (Flask and Django run on real servers in
test_wsgi_servers.py). ASGI side (ASGIMiddleware): Quart, Falcon's ASGI app, Litestar, Django's
ASGI handler (Starlette and FastAPI run on real servers in test_asgi_servers.py).
Each app answers a GET with a query parameter and echoes a POST body.
"""

import asyncio

import httpx
import pytest

from a2wsgi import ASGIMiddleware, WSGIMiddleware

BODY = bytes(range(256)) * 512


def bottle_app():
    bottle = pytest.importorskip("bottle")
    app = bottle.Bottle()

    @app.get("/hello")
    def hello():
        return "hello %s" % bottle.request.query.name

    @app.post("/echo")
    def echo():
        bottle.response.content_type = "application/octet-stream"
        return bottle.request.body.read()

    return app


def falcon_wsgi_app():
    falcon = pytest.importorskip("falcon")

    class Hello:
        def on_get(self, req, resp):
            resp.text = "hello %s" % req.get_param("name")

    class Echo:
        def on_post(self, req, resp):
            resp.content_type = "application/octet-stream"
            resp.data = req.bounded_stream.read()

    app = falcon.App()
    app.add_route("/hello", Hello())
    app.add_route("/echo", Echo())
    return app


def pyramid_app():
    pytest.importorskip("pyramid")
    from pyramid.config import Configurator
    from pyramid.response import Response

    def hello(request):
        return Response("hello %s" % request.params["name"])

    def echo(request):
        return Response(body=request.body, content_type="application/octet-stream")

    with Configurator() as config:
        config.add_route("hello", "/hello")
        config.add_view(hello, route_name="hello")
        config.add_route("echo", "/echo")
        config.add_view(echo, route_name="echo", request_method="POST")
        return config.make_wsgi_app()


def quart_app():
    quart = pytest.importorskip("quart")
    app = quart.Quart(__name__)

    @app.get("/hello")
    async def hello():
        return "hello %s" % quart.request.args["name"]

    @app.post("/echo")
    async def echo():
        return quart.Response(await quart.request.get_data(), content_type="application/octet-stream")

    return app


def falcon_asgi_app():
    pytest.importorskip("falcon")
    import falcon.asgi

    class Hello:
        async def on_get(self, req, resp):
            resp.text = "hello %s" % req.get_param("name")

    class Echo:
        async def on_post(self, req, resp):
            resp.content_type = "application/octet-stream"
            resp.data = await req.bounded_stream.read()

    app = falcon.asgi.App()
    app.add_route("/hello", Hello())
    app.add_route("/echo", Echo())
    return app


def litestar_app():
    pytest.importorskip("litestar")
    from litestar import Litestar, Request, get, post
    from litestar.response import Response

    @get("/hello", sync_to_thread=False)
    def hello(name: str) -> str:
        return "hello %s" % name

    @post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream", status_code=200)

    return Litestar([hello, echo])


def django_asgi_app():
    pytest.importorskip("django")
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import path

    import django

    def hello(request):
        return HttpResponse("hello %s" % request.GET["name"])

    def echo(request):
        return HttpResponse(request.body, content_type="application/octet-stream")

    if not settings.configured:
        settings.configure(ALLOWED_HOSTS=["*"], SECRET_KEY="test-only", ROOT_URLCONF=__name__,
                           MIDDLEWARE=[], INSTALLED_APPS=[])
        django.setup()
    from django.urls import clear_url_caches

    settings.ROOT_URLCONF = __name__  # another test may have configured Django first
    clear_url_caches()
    global urlpatterns
    urlpatterns = [path("hello", hello), path("echo", echo)]
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


urlpatterns = []


def _check(client):
    r = client.get("/hello", params={"name": "w\u00f6rld"})
    assert r.status_code == 200, r.text
    assert r.text == "hello w\u00f6rld"
    r = client.post("/echo", content=BODY)
    assert r.status_code == 200
    assert r.content == BODY


@pytest.mark.parametrize("make", [bottle_app, falcon_wsgi_app, pyramid_app],
                         ids=["bottle", "falcon", "pyramid"])
def test_wsgi_frameworks_through_wsgimiddleware(impl, make):
    app = WSGIMiddleware(make())

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            r = await client.get("/hello", params={"name": "w\u00f6rld"})
            assert r.status_code == 200, r.text
            assert r.text == "hello w\u00f6rld"
            r = await client.post("/echo", content=BODY)
            assert r.status_code == 200
            assert r.content == BODY
        await app.shutdown()  # stop the worker threads, as lifespan shutdown would

    asyncio.run(main())


@pytest.mark.parametrize("make", [quart_app, falcon_asgi_app, litestar_app, django_asgi_app],
                         ids=["quart", "falcon-asgi", "litestar", "django-asgi"])
def test_asgi_frameworks_through_asgimiddleware(impl, make):
    app = ASGIMiddleware(make())
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver") as client:
            _check(client)
    finally:
        app.close()
