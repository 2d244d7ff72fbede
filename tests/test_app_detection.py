"""The common mix-ups fail at construction with a message that names the fix, and valid apps of
every shape are accepted."""

import functools

import pytest

from a2wsgi import ASGIMiddleware, WSGIMiddleware


def wsgi_function(environ, start_response):
    start_response("200 OK", [])
    return [b""]


async def asgi_function(scope, receive, send):
    pass


class ASGIClass:
    async def __call__(self, scope, receive, send):
        pass


class WSGIClass:
    def __call__(self, environ, start_response):
        return wsgi_function(environ, start_response)


class SyncASGIWrapper:
    """A sync __call__ that returns the coroutine: valid ASGI, must not be refused."""

    def __call__(self, scope, receive, send):
        return asgi_function(scope, receive, send)


async def asgi_with_options(scope, receive, send, *, option=1):
    pass


@pytest.mark.parametrize("app", [
    asgi_function, ASGIClass(), SyncASGIWrapper(), functools.partial(asgi_with_options, option=2),
], ids=["coroutine-function", "class-instance", "sync-wrapper", "partial"])
def test_asgi_middleware_accepts_asgi_apps(impl, app):
    ASGIMiddleware(app)


@pytest.mark.parametrize("app", [wsgi_function, WSGIClass(), functools.partial(wsgi_function)],
                         ids=["function", "class-instance", "partial"])
def test_wsgi_middleware_accepts_wsgi_apps(impl, app):
    WSGIMiddleware(app)


@pytest.mark.parametrize("app", [wsgi_function, WSGIClass(), functools.partial(wsgi_function)],
                         ids=["function", "class-instance", "partial"])
def test_asgi_middleware_refuses_a_wsgi_app(impl, app):
    with pytest.raises(TypeError, match="looks like a WSGI application.*use a2wsgi.WSGIMiddleware"):
        ASGIMiddleware(app)


@pytest.mark.parametrize("app", [asgi_function, ASGIClass(), functools.partial(asgi_function)],
                         ids=["coroutine-function", "class-instance", "partial"])
def test_wsgi_middleware_refuses_an_asgi_app(impl, app):
    with pytest.raises(TypeError, match="looks like an ASGI application.*use a2wsgi.ASGIMiddleware"):
        WSGIMiddleware(app)


def test_not_callable(impl):
    with pytest.raises(TypeError, match="not callable"):
        WSGIMiddleware("app:main")
    with pytest.raises(TypeError, match="not callable"):
        ASGIMiddleware(None)


def test_framework_apps_accepted_on_the_right_side(impl):
    flask = pytest.importorskip("flask")
    starlette_applications = pytest.importorskip("starlette.applications")
    fastapi = pytest.importorskip("fastapi")
    pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(ROOT_URLCONF=[], ALLOWED_HOSTS=["*"], SECRET_KEY="x")
    import django

    django.setup()
    from django.core.asgi import get_asgi_application
    from django.core.wsgi import get_wsgi_application

    flask_app = flask.Flask(__name__)
    django_wsgi = get_wsgi_application()
    django_asgi = get_asgi_application()
    for app in (flask_app, django_wsgi):
        WSGIMiddleware(app)
        with pytest.raises(TypeError, match="use a2wsgi.WSGIMiddleware"):
            ASGIMiddleware(app)
    for app in (starlette_applications.Starlette(), fastapi.FastAPI(), django_asgi):
        ASGIMiddleware(app)
        with pytest.raises(TypeError, match="use a2wsgi.ASGIMiddleware"):
            WSGIMiddleware(app)


def test_wsgi_middleware_called_as_a_wsgi_app(impl):
    """A WSGI server calling WSGIMiddleware (an ASGI app) gets a message naming the fix."""
    middleware = WSGIMiddleware(wsgi_function)
    with pytest.raises(TypeError, match="WSGIMiddleware was called with .*ASGI server"):
        middleware({"REQUEST_METHOD": "GET"}, lambda status, headers, exc_info=None: None)


def test_asgi_middleware_called_as_an_asgi_app(impl):
    """An ASGI server calling ASGIMiddleware (a WSGI app) gets a message naming the fix."""
    middleware = ASGIMiddleware(asgi_function)

    async def receive():
        return {"type": "http.request"}

    async def send(message):
        pass

    with pytest.raises(TypeError, match="ASGIMiddleware was called with .*WSGI server"):
        middleware({"type": "http"}, receive, send)
    with pytest.raises(TypeError, match="ASGIMiddleware was called with .*WSGI server"):
        middleware({"type": "http", "asgi": {"version": "3.0"}})
