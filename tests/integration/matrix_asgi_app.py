"""The ASGI side of the server matrix (A->W): a FastAPI app with a lifespan and a Starlette app,
mounted at ``/fastapi`` and ``/starlette`` of one Starlette router, served as ``app`` =
ASGIMiddleware(it); ``bare`` is the same router without this package (for the limits of servers).

Routes (under each prefix): ``/hello`` (says how many lifespan startups this process ran before
it: the header ``X-Startups``); ``/echo``; ``/download?mib=N``; ``/error``; ``/endless?id=X`` (its
``finally`` writes ``finally-X`` in ``$A2WSGI_MARKERS``); ``/barrier?n=N&key=K``.
"""

import asyncio
import contextlib
import os
import threading

from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

import a2wsgi
from a2wsgi import ASGIMiddleware

MARKERS = os.environ.get("A2WSGI_MARKERS", "/tmp")
CHUNK = bytes(range(256)) * 256  # 64 KiB
STARTUPS = []  # pids, one per lifespan startup in this process
_barriers = {}
_barriers_lock = threading.Lock()


def _mark(name):
    with open(os.path.join(MARKERS, name), "w") as f:
        f.write(str(os.getpid()))


def _headers():
    return {"X-Startups": str(len(STARTUPS)), "X-A2WSGI-Speedups": str(a2wsgi.SPEEDUPS)}


async def hello(request):
    return PlainTextResponse("hello", headers=_headers())


async def echo(request):
    return Response(await request.body(), media_type="application/octet-stream", headers=_headers())


async def download(request):
    chunks = int(request.query_params.get("mib", "1")) * 16

    async def body():
        for _ in range(chunks):
            yield CHUNK

    headers = dict(_headers(), **{"Content-Length": str(chunks * len(CHUNK))})
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


async def error(request):
    raise RuntimeError("matrix: deliberate error")


async def endless(request):
    ident = request.query_params["id"]

    async def body():
        try:
            while True:
                yield b"data: tick\n\n"
                await asyncio.sleep(0.01)
        finally:
            _mark("finally-" + ident)

    return StreamingResponse(body(), media_type="text/event-stream", headers=_headers())


def barrier(request):  # sync: Starlette runs it on its thread pool
    n, key = int(request.query_params["n"]), request.query_params["key"]
    with _barriers_lock:
        b = _barriers.setdefault(key, threading.Barrier(n, timeout=30))
    b.wait()
    return PlainTextResponse("passed", headers=_headers())


ROUTES = [Route("/hello", hello), Route("/echo", echo, methods=["POST"]), Route("/download", download),
          Route("/error", error), Route("/endless", endless), Route("/barrier", barrier)]


@contextlib.asynccontextmanager
async def lifespan(app):
    STARTUPS.append(os.getpid())
    _mark("startup-%d-%d" % (os.getpid(), len(STARTUPS)))
    yield


fastapi_app = FastAPI(lifespan=lifespan)
starlette_app = Starlette(routes=ROUTES)


@fastapi_app.get("/hello")
async def fa_hello(request: Request):
    return await hello(request)


for _path, _endpoint, _methods in [("/echo", echo, ["POST"]), ("/download", download, ["GET"]),
                                   ("/error", error, ["GET"]), ("/endless", endless, ["GET"]),
                                   ("/barrier", barrier, ["GET"])]:
    fastapi_app.add_route(_path, _endpoint, methods=_methods)


@contextlib.asynccontextmanager
async def _root_lifespan(app):
    async with fastapi_app.router.lifespan_context(fastapi_app):
        yield


root = Starlette(routes=[Mount("/fastapi", fastapi_app), Mount("/starlette", starlette_app)],
                 lifespan=_root_lifespan)
app = ASGIMiddleware(root)
inline_app = ASGIMiddleware(root, inline=True)  # for servers that serve one request at a time
bare = root


def gcf_function(request):
    """Google Cloud Functions: a functions-framework function serving the ASGI app."""
    from werkzeug import Response as WerkzeugResponse

    return WerkzeugResponse.from_app(app, request.environ)


def bare_wsgi(environ, start_response):
    """A plain WSGI app without this package: the same check against it shows a server's own limit."""
    if environ.get("CONTENT_LENGTH"):
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
    elif environ.get("wsgi.input_terminated"):
        body = environ["wsgi.input"].read()
    else:
        body = b""
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]
