"""Apps for ``test_asgi_invisible.py``: the same routes as an ASGI app through ASGIMiddleware
(``/bridge/...``, Starlette; ``/raw/...``, a bare ASGI app) and as a native WSGI app (``/native/...``), in one WSGI app (``app``), so
that a test can compare what the server does with each.

Routes: ``/ok``, ``/raise-before`` (raises before any response), ``/raise-mid`` (one chunk,
then raises), and, bridge only, ``/sse`` (sse-starlette's EventSourceResponse: a ping task and
a stream task sending at once; the stream never yields, the ping does every 0.1 s; the
generator's ``finally`` writes a marker to ``A2WSGI_MARKERS``).

    python asgi_invisible_apps.py waitress PORT
"""

import asyncio
import os
import signal
import sys

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from a2wsgi import ASGIMiddleware

MARKERS = os.environ.get("A2WSGI_MARKERS", "/tmp")


async def ok(request):
    return PlainTextResponse("ok")


async def raise_before(request):
    raise RuntimeError("raised before the response")


async def raise_mid(request):
    async def body():
        yield b"part"
        await asyncio.sleep(0.01)
        raise RuntimeError("raised mid-stream")

    return StreamingResponse(body())


async def sse(request):
    name = request.query_params.get("name", "sse")

    async def events():
        try:
            await asyncio.Future()  # no event ever: only the pings go out
            yield {"data": "never"}
        finally:
            with open(os.path.join(MARKERS, "sse-finally-" + name), "w") as f:
                f.write("%d\n" % os.getpid())

    return EventSourceResponse(events(), ping=0.1)


bridge = ASGIMiddleware(Starlette(routes=[Route("/ok", ok), Route("/raise-before", raise_before),
                                          Route("/raise-mid", raise_mid), Route("/sse", sse)]))


async def raw(scope, receive, send):
    """A bare ASGI app (no framework error handling): the bridge itself answers its errors."""
    if scope["type"] != "http":
        return
    path = scope["path"][len(scope.get("root_path", "")):]
    if path == "/ok":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/raise-before":
        raise RuntimeError("raised before the response")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"part", "more_body": True})
    raise RuntimeError("raised mid-stream")


raw_bridge = ASGIMiddleware(raw)


def native(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/ok":
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "2")])
        return [b"ok"]
    if path == "/raise-before":
        raise RuntimeError("raised before the response")
    if path == "/raise-mid":
        def body():
            yield b"part"
            raise RuntimeError("raised mid-stream")

        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return body()
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    for prefix, target in (("/bridge", bridge), ("/raw", raw_bridge), ("/native", native)):
        if path.startswith(prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
            environ["PATH_INFO"] = path[len(prefix):]
            return target(environ, start_response)
    start_response("404 Not Found", [("Content-Length", "0")])
    return []


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    import waitress

    waitress.serve(app, host="127.0.0.1", port=int(sys.argv[2]), threads=4, _quiet=True)
