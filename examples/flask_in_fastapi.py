"""A Flask app mounted under /flask inside a FastAPI app, served by uvicorn.

    uvicorn examples.flask_in_fastapi:app --port 8000

http://127.0.0.1:8000/ is FastAPI; http://127.0.0.1:8000/flask/ is Flask. Flask sees
SCRIPT_NAME=/flask (from the mount's root_path), so url_for() builds URLs under the mount.
"""

from fastapi import FastAPI
from flask import Flask, jsonify, request, url_for

from a2wsgi import WSGIMiddleware

flask_app = Flask(__name__)


@flask_app.get("/")
def flask_index():
    return jsonify(
        framework="flask",
        script_name=request.environ["SCRIPT_NAME"],
        path_info=request.environ["PATH_INFO"],
        hello_url=url_for("flask_hello", name="world"),
        external_url=url_for("flask_hello", name="world", _external=True),
    )


@flask_app.get("/hello/<name>")
def flask_hello(name):
    return "Hello, %s, from Flask!" % name


app = FastAPI()


@app.get("/")
def fastapi_index():
    return {"framework": "fastapi", "flask_is_at": "/flask/"}


app.mount("/flask", WSGIMiddleware(flask_app))
