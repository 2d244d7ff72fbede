"""FastAPI on gunicorn (a WSGI server) through ASGIMiddleware, with a lifespan and a background task.

    gunicorn examples.fastapi_on_gunicorn:app --bind 127.0.0.1:8000                  # sync workers
    gunicorn examples.fastapi_on_gunicorn:app --bind 127.0.0.1:8000 --threads 8      # gthread

The lifespan runs once per worker process, before its first request. ``EXAMPLE_LOG`` names a file
where the lifespan and the background task write what they did (the tests read it).
"""

import contextlib
import os

from fastapi import BackgroundTasks, FastAPI, Request

from a2wsgi import ASGIMiddleware

LOG = os.environ.get("EXAMPLE_LOG")


def _log(line):
    if LOG:
        with open(LOG, "a") as f:
            f.write("%s %d\n" % (line, os.getpid()))


@contextlib.asynccontextmanager
async def lifespan(app):
    _log("startup")
    yield {"greeting": "Hello from FastAPI on a WSGI server"}
    _log("shutdown")


fastapi_app = FastAPI(lifespan=lifespan)


@fastapi_app.get("/")
async def index(request: Request):
    return {"message": request.state.greeting, "pid": os.getpid()}


@fastapi_app.post("/orders/{order_id}")
async def place_order(order_id: int, tasks: BackgroundTasks):
    tasks.add_task(_log, "order %d processed" % order_id)
    return {"order": order_id, "status": "accepted"}


app = ASGIMiddleware(fastapi_app)
