"""Apps for tests/integration/test_wsgi_invisible.py: the same routes as WSGI apps (Flask, Bottle)
behind WSGIMiddleware and as a native ASGI app, plus Flask mounted in Starlette, FastAPI and a
Connexion 3 FlaskApp with an error handler.

Routes: ``/ok``; ``/raise`` (raises before the response); ``/stream-raise`` (one chunk, then
raises).
"""

import bottle
import flask

from a2wsgi import WSGIMiddleware


class Boom(Exception):
    pass


def make_flask():
    app = flask.Flask("invisible")
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.route("/ok")
    def ok():
        return "ok"

    @app.route("/raise")
    def fail():
        raise Boom("before the response")

    @app.route("/stream-raise")
    def stream_fail():
        def gen():
            yield "first chunk;"
            raise Boom("mid-stream")

        return flask.Response(gen(), mimetype="text/plain")

    return app


def make_bottle():
    app = bottle.Bottle(catchall=True)

    @app.route("/ok")
    def ok():
        return "ok"

    @app.route("/raise")
    def fail():
        raise Boom("before the response")

    @app.route("/stream-raise")
    def stream_fail():
        def gen():
            yield "first chunk;"
            raise Boom("mid-stream")

        return gen()

    return app


flask_asgi = WSGIMiddleware(make_flask())
bottle_asgi = WSGIMiddleware(make_bottle())


async def native(scope, receive, send):
    """The same routes as a native ASGI app; the server's own behaviour is the reference."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    await receive()
    if path == "/raise":
        raise Boom("before the response")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    if path == "/stream-raise":
        await send({"type": "http.response.body", "body": b"first chunk;", "more_body": True})
        raise Boom("mid-stream")
    await send({"type": "http.response.body", "body": b"ok"})


def _handled(request, exc):
    from starlette.responses import JSONResponse

    return JSONResponse({"handled": str(exc)}, status_code=418)


def make_starlette():
    from starlette.applications import Starlette
    from starlette.routing import Mount

    return Starlette(routes=[Mount("/flask", app=WSGIMiddleware(make_flask()))],
                     exception_handlers={Boom: _handled})


def make_fastapi():
    import fastapi

    app = fastapi.FastAPI()
    app.mount("/flask", WSGIMiddleware(make_flask()))
    app.add_exception_handler(Boom, _handled)
    return app


SPEC = """
openapi: 3.0.0
info: {title: invisible, version: "1"}
paths:
  /raise:
    get:
      operationId: wsgi_invisible_apps.connexion_raise
      responses: {"200": {description: ok}}
"""


def connexion_raise():
    raise Boom("in the Flask view")


def make_connexion(spec_dir):
    import os

    import connexion
    from connexion.lifecycle import ConnexionResponse

    with open(os.path.join(spec_dir, "openapi.yaml"), "w") as f:
        f.write(SPEC)

    def problem(request, exc):
        return ConnexionResponse(status_code=418, body='{"problem": "%s"}' % exc,
                                 content_type="application/problem+json")

    app = connexion.FlaskApp(__name__, specification_dir=spec_dir)
    app.add_api("openapi.yaml")
    app.add_error_handler(Boom, problem)
    return app
