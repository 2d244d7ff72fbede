"""A Starlette app and a FastAPI app, each through ASGIMiddleware, mounted side by side in one WSGI
app (``app``) for the real-server tests: ``/starlette/...`` and ``/fastapi/...``.

Both have the same routes: ``/`` (lifespan state), ``/echo`` (streamed request body back),
``/upload`` (size and SHA-256 of a streamed body), ``/download?size=N`` (a streamed response),
``/forever?name=X`` (streams until the client goes away, then writes a marker), ``/background?name=X``
(a background task writes a marker), ``/error`` (raises). Markers go to ``A2WSGI_MARKERS``.
"""

import asyncio
import contextlib
import hashlib
import os

from fastapi import BackgroundTasks, FastAPI, Request
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from a2wsgi import ASGIMiddleware

MARKERS = os.environ.get("A2WSGI_MARKERS", os.path.join(os.environ.get("TMPDIR", "/tmp"), "a2wsgi-markers"))
PIECE = bytes(range(256)) * 256  # 64 KiB


def mark(name):
    os.makedirs(MARKERS, exist_ok=True)
    with open(os.path.join(MARKERS, name), "a") as f:
        f.write("%d\n" % os.getpid())


def lifespan_for(framework):
    @contextlib.asynccontextmanager
    async def lifespan(app):
        mark("startup-%s-%d" % (framework, os.getpid()))
        yield {"greeting": "hello from %s lifespan" % framework}
        mark("shutdown-%s-%d" % (framework, os.getpid()))

    return lifespan


async def download_body(size):
    left = size
    while left > 0:
        piece = PIECE if left >= len(PIECE) else PIECE[:left]
        left -= len(piece)
        yield piece


def forever_body(request, name):
    async def body():
        try:
            for i in range(10**9):
                if await request.is_disconnected():
                    return
                yield b"tick %d\n" % i + b"." * 8192
                await asyncio.sleep(0.005)
        finally:
            mark("disconnect-" + name)

    return body()


async def upload_summary(request):
    digest = hashlib.sha256()
    size = pieces = 0
    async for piece in request.stream():
        digest.update(piece)
        size += len(piece)
        pieces += 1
    return {"size": size, "sha256": digest.hexdigest(), "pieces": pieces}


# -- Starlette ---------------------------------------------------------------------------------

async def s_index(request):
    return JSONResponse({"framework": "starlette", "greeting": request.state.greeting, "pid": os.getpid()})


async def s_echo(request):
    body = b"".join([piece async for piece in request.stream()])
    return Response(body, media_type="application/octet-stream")


async def s_upload(request):
    return JSONResponse(await upload_summary(request))


async def s_download(request):
    size = int(request.query_params["size"])
    return StreamingResponse(download_body(size), media_type="application/octet-stream",
                             headers={"content-length": str(size)})


async def s_forever(request):
    return StreamingResponse(forever_body(request, request.query_params["name"]), media_type="text/plain")


async def s_background(request):
    return Response("ok", background=BackgroundTask(mark, "background-" + request.query_params["name"]))


async def s_error(request):
    raise RuntimeError("starlette endpoint failed on purpose")


starlette_app = Starlette(
    routes=[Route("/", s_index), Route("/echo", s_echo, methods=["POST"]),
            Route("/upload", s_upload, methods=["POST"]), Route("/download", s_download),
            Route("/forever", s_forever), Route("/background", s_background, methods=["POST"]),
            Route("/error", s_error)],
    lifespan=lifespan_for("starlette"),
)


# -- FastAPI -----------------------------------------------------------------------------------

fastapi_app = FastAPI(lifespan=lifespan_for("fastapi"))


@fastapi_app.get("/")
async def f_index(request: Request):
    return {"framework": "fastapi", "greeting": request.state.greeting, "pid": os.getpid()}


@fastapi_app.post("/echo")
async def f_echo(request: Request):
    return Response(await request.body(), media_type="application/octet-stream")


@fastapi_app.post("/upload")
async def f_upload(request: Request):
    return await upload_summary(request)


@fastapi_app.get("/download")
async def f_download(size: int):
    return StreamingResponse(download_body(size), media_type="application/octet-stream",
                             headers={"content-length": str(size)})


@fastapi_app.get("/forever")
async def f_forever(request: Request, name: str):
    return StreamingResponse(forever_body(request, name), media_type="text/plain")


@fastapi_app.post("/background")
async def f_background(name: str, tasks: BackgroundTasks):
    tasks.add_task(mark, "background-" + name)
    return Response("ok")


@fastapi_app.get("/error")
async def f_error():
    raise RuntimeError("fastapi endpoint failed on purpose")


# -- one WSGI app for the server ---------------------------------------------------------------

MOUNTS = {"/starlette": ASGIMiddleware(starlette_app), "/fastapi": ASGIMiddleware(fastapi_app)}


def app(environ, start_response):
    """Dispatch on the first path segment (PEP 3333 SCRIPT_NAME/PATH_INFO shift)."""
    path = environ.get("PATH_INFO", "")
    for prefix, mounted in MOUNTS.items():
        if path == prefix or path.startswith(prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
            environ["PATH_INFO"] = path[len(prefix):]
            return mounted(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"mounts: /starlette, /fastapi\n"]
