"""The server matrix, W->A: a Flask app through WSGIMiddleware on every ASGI server users deploy
on, each a real process on 127.0.0.1 (free port, stopped by pid), in both implementations. The
rows are README's "Tested servers" table for this side (test_matrix_readme.py compares them)."""

import sys

import pytest

import matrix_checks as mc
from servers import free_port, running

pytest.importorskip("flask")
pytestmark = pytest.mark.skipif(mc.PURE_ONLY_PASS, reason="the server matrix ran pure in the first pass")

PY = sys.executable
ALL = {"get", "echo", "chunked", "download", "error", "leave", "concurrent"}

# name: (argv for a port, the app it serves, checks it runs, the flags and limits for README)
ROWS = {
    "uvicorn": (lambda p: [PY, "-m", "uvicorn", "matrix_wsgi_app:app", "--port", str(p), "--loop", "uvloop",
                           "--http", "httptools", "--log-level", "warning"],
                ALL, "uvicorn[standard] (uvloop, httptools)"),
    "uvicorn-interface-wsgi": (lambda p: [PY, "-m", "uvicorn", "matrix_wsgi_app:flask_app", "--interface", "wsgi",
                                          "--port", str(p), "--log-level", "warning"],
                               ALL, "`--interface wsgi` with the plain Flask app: uvicorn wraps it in this "
                                    "package's WSGIMiddleware"),
    "hypercorn": (lambda p: [PY, "-m", "hypercorn", "matrix_wsgi_app:app", "-b", "127.0.0.1:%d" % p,
                             "--worker-class", "asyncio"],
                  ALL, "an asyncio worker (`--worker-class asyncio`, the default, or `uvloop`); the trio "
                       "worker gets a clear error at its first event"),
    "granian": (lambda p: [PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(p),
                           "--log-level", "warning", "matrix_wsgi_app:app"],
                ALL, "`--interface asgi`"),
    "daphne": (lambda p: [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(p), "matrix_wsgi_app:app"],
               ALL - {"download"}, "daphne buffers a fast download whole (64 MiB for a bare ASGI app "
                                   "too): its RSS is not bounded"),
    "gunicorn-uvicorn-worker": (lambda p: [PY, "-m", "gunicorn", "matrix_wsgi_app:app", "-b", "127.0.0.1:%d" % p,
                                           "-w", "1", "-k", "uvicorn_worker.UvicornWorker",
                                           "--graceful-timeout", "5", "--log-level", "warning"],
                                ALL, "`-k uvicorn_worker.UvicornWorker`"),
    "granian-django": (lambda p: [PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port",
                                  str(p), "--log-level", "warning", "matrix_django_app:app"],
                       ALL - {"chunked"}, "`--interface asgi`; Django itself reads no request body "
                                          "without Content-Length (it ignores `wsgi.input_terminated`)"),
}
FRAMEWORKS = {"granian-django": "Django", "uvicorn": "Flask", "uvicorn-interface-wsgi": "Flask", "hypercorn": "Flask",
              "granian": "Flask", "daphne": "Flask", "gunicorn-uvicorn-worker": "Flask",
              "mangum": "Flask (API Gateway v1 and v2 events, in-process)"}


NEEDS = {"uvicorn": ["uvicorn", "uvloop", "httptools"], "uvicorn-interface-wsgi": ["uvicorn"],
         "hypercorn": ["hypercorn"], "granian": ["granian"], "daphne": ["daphne"],
         "gunicorn-uvicorn-worker": ["gunicorn", "uvicorn_worker"], "granian-django": ["granian", "django"]}


@pytest.fixture(scope="module", params=mc.mode_params(ROWS))
def target(request, tmp_path_factory):
    name, mode = request.param
    mc.skip_without(NEEDS.get(name, ()))
    markers = str(tmp_path_factory.mktemp("markers"))
    port = free_port()
    with running(ROWS[name][0](port), port, env=mc.mode_env(mode, markers)) as proc:
        t = mc.Target(port, "", markers, proc.pid, mode)
        t.name = name
        yield t


def _run(request, t, check, fn):
    if check not in ROWS[t.name][1]:
        pytest.skip("%s: %s" % (t.name, ROWS[t.name][2]))
    return fn(t)


def test_get(request, target):
    _run(request, target, "get", mc.check_get)


def test_post_echo_1mib(request, target):
    _run(request, target, "echo", mc.check_post_echo)


def test_chunked_upload(request, target):
    _run(request, target, "chunked", mc.check_chunked_upload)


def test_download_64mib_rss_bounded(request, target):
    _run(request, target, "download", mc.check_download_bounded)


def test_error_then_same_connection(request, target):
    _run(request, target, "error", mc.check_error_then_reuse)


def test_client_leaving_endless_stream_stops_the_app(request, target):
    _run(request, target, "leave", mc.check_client_leaves_endless)


def test_concurrent(request, target):
    _run(request, target, "concurrent", mc.check_concurrent)


def test_uvicorn_interface_wsgi_is_served_by_this_package(target):
    if target.name != "uvicorn-interface-wsgi":
        pytest.skip("uvicorn --interface wsgi only")
    import json

    status, _, body = target.request("GET", "/whoami")
    info = json.loads(body)
    assert status == 200 and info["a2wsgi_loaded"] == ["a2wsgi.wsgi"]
    assert info["uvicorn_wrapper"] == "a2wsgi.wsgi"


# ---------------------------------------------------------------------------------------------
# hypercorn's trio worker: WSGIMiddleware needs asyncio; the first event says so and how to fix it.

def test_hypercorn_trio_worker_fails_at_once_naming_the_fix(tmp_path):
    pytest.importorskip("trio")
    port = free_port()
    log = None
    with running([PY, "-m", "hypercorn", "matrix_wsgi_app:app", "-b", "127.0.0.1:%d" % port,
                  "--worker-class", "trio"], port, env=mc.mode_env("compiled", str(tmp_path))) as proc:
        t = mc.Target(port, "", str(tmp_path), proc.pid, "compiled")
        status, _, _ = t.request("GET", "/hello")
        assert status == 500
        log_path = "%s/a2wsgi-server-%d.log" % (__import__("os").environ.get("TMPDIR", "/tmp"), port)
        with open(log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
    assert "WSGIMiddleware needs an asyncio event loop" in log and "--worker-class asyncio" in log, log[-3000:]
    assert "no running event loop" not in log


# ---------------------------------------------------------------------------------------------
# Mangum (AWS Lambda): Mangum(WSGIMiddleware(app)) driven by API Gateway events, twice in a row.

def _v1_event(body):
    return {
        "resource": "/echo", "path": "/echo", "httpMethod": "POST", "headers": {"content-type": "text/plain"},
        "multiValueHeaders": {"content-type": ["text/plain"]}, "queryStringParameters": None,
        "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
        "requestContext": {"resourcePath": "/echo", "httpMethod": "POST", "path": "/prod/echo",
                           "stage": "prod", "identity": {"sourceIp": "127.0.0.1"}},
        "body": body, "isBase64Encoded": False,
    }


def _v2_event(body):
    return {
        "version": "2.0", "routeKey": "POST /echo", "rawPath": "/echo", "rawQueryString": "",
        "headers": {"content-type": "text/plain"},
        "requestContext": {"http": {"method": "POST", "path": "/echo", "protocol": "HTTP/1.1",
                                    "sourceIp": "127.0.0.1", "userAgent": "test"},
                           "stage": "$default"},
        "body": body, "isBase64Encoded": False,
    }


def test_mangum_api_gateway_v1_and_v2_twice(impl):
    mangum = pytest.importorskip("mangum")
    import matrix_wsgi_app

    from a2wsgi import WSGIMiddleware

    handler = mangum.Mangum(WSGIMiddleware(matrix_wsgi_app.flask_app), lifespan="auto")
    for make in (_v1_event, _v2_event):
        for n in range(2):
            body = "payload %d %s" % (n, make.__name__) * 50
            result = handler(make(body), {})
            assert result["statusCode"] == 200, result
            got = result["body"]
            if result.get("isBase64Encoded"):
                got = __import__("base64").b64decode(got).decode()
            assert got == body


# ---------------------------------------------------------------------------------------------
# The servers' own limits, shown without this package.

def test_daphne_buffers_a_fast_download_of_a_bare_asgi_app(tmp_path):
    """Why the daphne row skips the RSS check: daphne holds a fast download in memory for a bare
    ASGI app too (its RSS grows by most of the 64 MiB)."""
    pytest.importorskip("daphne")
    port = free_port()
    with running(ROWS["daphne"][0](port)[:-1] + ["matrix_wsgi_app:bare_asgi"], port,
                 env=mc.mode_env("compiled", str(tmp_path))) as proc:
        growth = mc.download_rss_growth(mc.Target(port, "", str(tmp_path), proc.pid, "compiled"))
    assert growth > 40 * mc.MIB, "daphne grew by %.1f MiB only" % (growth / mc.MIB)
