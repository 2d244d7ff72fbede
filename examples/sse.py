"""Server-Sent Events through both bridges, with the client disconnect handled.

ASGI app on a WSGI server (ASGIMiddleware): Starlette streams events and stops when
``request.is_disconnected()`` says the client left.

    gunicorn examples.sse:wsgi_app --threads 8 --bind 127.0.0.1:8000

WSGI app on an ASGI server (WSGIMiddleware): a Flask generator streams events; when the client
leaves, the generator is closed (its ``finally`` runs).

    uvicorn examples.sse:asgi_app --port 8000

``EXAMPLE_LOG`` names a file where each stream writes "closed" when it ends (the tests read it).
"""

import asyncio
import itertools
import os
import time

from flask import Flask, Response
from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from a2wsgi import ASGIMiddleware, WSGIMiddleware

LOG = os.environ.get("EXAMPLE_LOG")
INTERVAL = float(os.environ.get("EXAMPLE_SSE_INTERVAL", "0.05"))


def _log(line):
    if LOG:
        with open(LOG, "a") as f:
            f.write(line + "\n")


async def events(request):
    async def stream():
        try:
            for n in itertools.count():
                if await request.is_disconnected():
                    _log("asgi disconnected")
                    break
                yield "id: %d\ndata: tick %d\n\n" % (n, n)
                await asyncio.sleep(INTERVAL)
        finally:
            _log("asgi closed")

    return StreamingResponse(stream(), media_type="text/event-stream")


starlette_app = Starlette(routes=[Route("/events", events)])
wsgi_app = ASGIMiddleware(starlette_app)

flask_app = Flask(__name__)


@flask_app.get("/events")
def flask_events():
    def stream():
        try:
            for n in itertools.count():
                yield "id: %d\ndata: tick %d\n\n" % (n, n)
                time.sleep(INTERVAL)
        finally:
            _log("wsgi closed")

    return Response(stream(), mimetype="text/event-stream")


asgi_app = WSGIMiddleware(flask_app)
