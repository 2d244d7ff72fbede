"""Recognise which protocol an application speaks, to turn the common mix-ups into clear errors.

The checks are conservative: they refuse an application only when it clearly speaks the other
protocol, so that class-based apps, ``functools.partial`` objects and framework app objects
(Starlette, FastAPI, Django, Flask) are accepted.
"""

import functools
import inspect
import sys

__all__ = ("asyncio_required", "check_asgi_app", "check_wsgi_app", "wrong_call_error")


def _unwrap(app):
    while isinstance(app, functools.partial):
        app = app.func
    return app


def _is_async(app):
    if inspect.iscoroutinefunction(app):
        return True
    if inspect.isclass(app):
        return False
    call = getattr(app, "__call__", None)
    return call is not None and inspect.iscoroutinefunction(call)


def _positional_arity(app):
    """(fewest, most) positional arguments ``app(...)`` accepts, or None when unknown."""
    try:
        sig = inspect.signature(app)
    except (TypeError, ValueError):
        return None
    least = most = 0
    for param in sig.parameters.values():
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            most += 1
            if param.default is param.empty:
                least += 1
        elif param.kind == param.VAR_POSITIONAL:
            return least, None
    return least, most


def _describe(app):
    target = _unwrap(app)
    if inspect.isfunction(target) or inspect.ismethod(target):
        kind = "coroutine function" if inspect.iscoroutinefunction(target) else "function"
        name = "%s.%s" % (getattr(target, "__module__", "?"), getattr(target, "__qualname__", "?"))
    else:
        kind = "%s object" % type(target).__name__
        name = "%s.%s" % (type(target).__module__, type(target).__qualname__)
    return "%s %s%s" % (kind, name, str(_safe_signature(app)))


def _safe_signature(app):
    try:
        return inspect.signature(app)
    except (TypeError, ValueError):
        return "(...)"


def check_asgi_app(app):
    """Raise TypeError if ``app`` is clearly a WSGI app: not async, called with two arguments."""
    if not callable(app):
        raise TypeError("ASGIMiddleware needs an ASGI application, got %r, which is not callable" % (app,))
    if _is_async(app) or inspect.isclass(app):
        return
    arity = _positional_arity(app)
    if arity is None:
        return
    least, most = arity
    if least <= 2 and most == 2:
        raise TypeError(
            "ASGIMiddleware wraps an ASGI application (async def app(scope, receive, send)), but got "
            "%s, which looks like a WSGI application (environ, start_response). To serve a WSGI app "
            "on an ASGI server, use a2wsgi.WSGIMiddleware; to serve an ASGI app on a WSGI server, "
            "pass the ASGI app to ASGIMiddleware." % _describe(app)
        )


def check_wsgi_app(app):
    """Raise TypeError if ``app`` is clearly an ASGI app: a coroutine function or async __call__."""
    if not callable(app):
        raise TypeError("WSGIMiddleware needs a WSGI application, got %r, which is not callable" % (app,))
    if _is_async(app):
        raise TypeError(
            "WSGIMiddleware wraps a WSGI application (def app(environ, start_response)), but got %s, "
            "which is async and so looks like an ASGI application. An ASGI app runs on an ASGI server "
            "as it is; to serve an ASGI app on a WSGI server, use a2wsgi.ASGIMiddleware."
            % _describe(app)
        )


def wrong_call_error(middleware, expected, got):
    """The TypeError for a middleware called with the other protocol's arguments."""
    if middleware == "WSGIMiddleware":
        fix = ("WSGIMiddleware is an ASGI application: serve it with an ASGI server (uvicorn, "
               "hypercorn, granian). To serve an ASGI app on a WSGI server, use ASGIMiddleware.")
    else:
        fix = ("ASGIMiddleware is a WSGI application: serve it with a WSGI server (gunicorn, "
               "waitress, mod_wsgi). To serve a WSGI app on an ASGI server, use WSGIMiddleware.")
    return TypeError("%s was called with %s, but expects %s. %s" % (middleware, got, expected, fix))


def asyncio_required():
    """The RuntimeError for a call that no asyncio event loop runs: WSGIMiddleware hands work
    between its threads and the loop with asyncio's primitives, so on another event loop
    (hypercorn's trio worker) it cannot work; this says so at the first event instead of failing
    deep inside."""
    other = "trio" if "trio" in sys.modules else "a non-asyncio event loop"
    return RuntimeError(
        "WSGIMiddleware needs an asyncio event loop, but the ASGI server runs it on %s. Run the "
        "server with an asyncio worker: for hypercorn, `--worker-class asyncio` (the default) or "
        "`--worker-class uvloop`, not `--worker-class trio`; uvicorn, granian and daphne use "
        "asyncio." % other
    )
