"""The WSGI side of the server matrix (W->A): a plain Flask app, and ``app`` = WSGIMiddleware(it).

Routes: ``/hello``; ``/echo`` (POST, the body back); ``/download?mib=N`` (N MiB in 64 KiB chunks);
``/error`` (an unhandled exception: PROPAGATE_EXCEPTIONS lets it reach the server's side);
``/endless?id=X`` (chunks forever; its ``finally`` writes the marker file ``finally-X`` in
``$A2WSGI_MARKERS``); ``/barrier?n=N&key=K`` (answers once N requests wait in it at the same time: a
timing-free proof of concurrency); ``/whoami`` (which WSGIMiddleware is loaded).
"""

import os
import sys
import threading
import time

from flask import Flask, Response, request

import a2wsgi
from a2wsgi import WSGIMiddleware

flask_app = Flask(__name__)
flask_app.config["PROPAGATE_EXCEPTIONS"] = True
MARKERS = os.environ.get("A2WSGI_MARKERS", "/tmp")
CHUNK = bytes(range(256)) * 256  # 64 KiB
_barriers = {}
_barriers_lock = threading.Lock()


def _mark(name):
    with open(os.path.join(MARKERS, name), "w") as f:
        f.write(str(os.getpid()))


@flask_app.after_request
def _implementation(response):
    response.headers["X-A2WSGI-Speedups"] = str(a2wsgi.SPEEDUPS)
    return response


@flask_app.route("/hello")
def hello():
    return "hello"


@flask_app.route("/echo", methods=["POST"])
def echo():
    return Response(request.get_data(), mimetype="application/octet-stream")


@flask_app.route("/download")
def download():
    chunks = int(request.args.get("mib", "1")) * 16

    def body():
        for _ in range(chunks):
            yield CHUNK

    return Response(body(), mimetype="application/octet-stream",
                    headers={"Content-Length": str(chunks * len(CHUNK))})


@flask_app.route("/error")
def error():
    raise RuntimeError("matrix: deliberate error")


@flask_app.route("/endless")
def endless():
    ident = request.args["id"]

    def body():
        try:
            while True:
                yield b"data: tick\n\n"
                time.sleep(0.01)
        finally:
            _mark("finally-" + ident)

    return Response(body(), mimetype="text/event-stream")


@flask_app.route("/barrier")
def barrier():
    n, key = int(request.args["n"]), request.args["key"]
    with _barriers_lock:
        b = _barriers.setdefault(key, threading.Barrier(n, timeout=30))
    b.wait()
    return "passed"


@flask_app.route("/whoami")
def whoami():
    served_by = [name for name in ("a2wsgi.wsgi",) if name in sys.modules]
    uvicorn_wsgi = sys.modules.get("uvicorn.middleware.wsgi")
    wrapper = getattr(uvicorn_wsgi, "WSGIMiddleware", None) if uvicorn_wsgi else None
    return {"a2wsgi_loaded": served_by, "uvicorn_wrapper": getattr(wrapper, "__module__", None)}


app = WSGIMiddleware(flask_app)


async def bare_asgi(scope, receive, send):
    """A bare ASGI app without this package (``/download?mib=N``): the same check against it shows
    a server's own limit."""
    if scope["type"] != "http":
        return
    chunks = 16 * int(scope["query_string"].decode().partition("=")[2] or 1)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(chunks * len(CHUNK)).encode())]})
    for _ in range(chunks):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
