"""A Flask app served through WSGIMiddleware, for the integration tests' real servers.

``A2WSGI_TEST_MARKERS`` names a directory where a stream writes ``closed-<marker>`` when its
``close()`` runs, so that a test can see it from outside the server process.
"""

import hashlib
import itertools
import os
import time

from flask import Flask, Response, jsonify, request

import a2wsgi
from a2wsgi import WSGIMiddleware

MARKERS = os.environ.get("A2WSGI_TEST_MARKERS", "")
CHUNK = 64 * 1024


def write_marker(name):
    if MARKERS and name:
        with open(os.path.join(MARKERS, "closed-" + name), "w") as f:
            f.write("closed")


app = Flask(__name__)


@app.after_request
def tag(response):
    response.headers["X-Speedups"] = "1" if a2wsgi.SPEEDUPS else "0"
    return response


@app.get("/hello")
def hello():
    return "hello from flask"


@app.post("/echo")
def echo():
    return Response(request.get_data(), mimetype="application/octet-stream")


@app.post("/upload")
def upload():
    stream = request.stream
    digest = hashlib.sha256()
    size = 0
    while True:
        data = stream.read(CHUNK)
        if not data:
            break
        size += len(data)
        digest.update(data)
    return jsonify(size=size, sha256=digest.hexdigest(),
                   content_length=request.environ.get("CONTENT_LENGTH"))


@app.get("/download")
def download():
    total = int(request.args.get("mb", "1")) * 1024 * 1024
    block = bytes(range(256)) * (CHUNK // 256)

    def chunks():
        left = total
        while left > 0:
            yield block[:min(left, CHUNK)]
            left -= CHUNK

    return Response(chunks(), mimetype="application/octet-stream",
                    headers={"Content-Length": str(total)})


@app.get("/forever")
def forever():
    marker = request.args.get("marker", "")
    block = b"f" * CHUNK

    def chunks():
        for _ in itertools.count():
            yield block

    response = Response(chunks(), mimetype="application/octet-stream")
    response.call_on_close(lambda: write_marker(marker))
    return response


@app.get("/slow/<int:n>")
def slow(n):
    time.sleep(0.005)
    return "request %d" % n


flask_asgi = WSGIMiddleware(app, workers=10)
