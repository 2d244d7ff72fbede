"""The server matrix, A->W: a FastAPI app (with a lifespan) and a Starlette app through
ASGIMiddleware on every WSGI server users deploy on, each a real process on 127.0.0.1 (free port,
stopped by pid), in both implementations. The rows are README's "Tested servers" table for this
side (test_matrix_readme.py compares them)."""

import os
import shutil
import socket
import sys
import tempfile

import pytest

import matrix_checks as mc
from servers import free_port, running

pytest.importorskip("fastapi")
pytestmark = pytest.mark.skipif(mc.PURE_ONLY_PASS, reason="the server matrix ran pure in the first pass")

PY = sys.executable
HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "matrix_runner.py")


def _tool(name):
    """A console script of this interpreter's environment (its bin/ need not be on PATH)."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else (shutil.which(name) or name)
ALL = {"get", "echo", "chunked", "download", "error", "leave", "concurrent", "lifespan"}


def _gunicorn(*flags, app="matrix_asgi_app:app"):
    return lambda p: [PY, "-m", "gunicorn", app, "-b", "127.0.0.1:%d" % p, "--graceful-timeout", "5",
                      "--log-level", "warning", *flags]


def _uwsgi(*flags, app="matrix_asgi_app:app"):
    return lambda p: [_tool("uwsgi"), "--http", "127.0.0.1:%d" % p, "--http-keepalive",
                      "--module", app, "--home", sys.prefix, "--master", "--die-on-term",
                      "--disable-logging", *flags]


# Where mod_wsgi-express as root cannot run from this interpreter (its daemon user cannot read it),
# .ci/mod_wsgi_env.sh builds a world-readable one: venv/ (mod_wsgi and a2wsgi), app/, run/.
MOD_WSGI_ENV = os.environ.get("A2WSGI_MOD_WSGI_ENV", "")


def _mod_wsgi(*flags, app="matrix_asgi_app.py", callable_="app"):
    def argv(p):
        root = ["--user", "nobody", "--group", "nogroup"] if os.geteuid() == 0 else []
        if MOD_WSGI_ENV:
            tool, app_dir = os.path.join(MOD_WSGI_ENV, "venv", "bin", "mod_wsgi-express"), os.path.join(MOD_WSGI_ENV, "app")
            server_root = os.path.join(MOD_WSGI_ENV, "run", "server-%d" % p)
        else:
            tool, app_dir = _tool("mod_wsgi-express"), HERE
            server_root = os.path.join(os.environ.get("TMPDIR", "/tmp"), "a2wsgi-mod_wsgi-%d" % p)
        return [tool, "start-server", os.path.join(app_dir, app), "--callable-object", callable_,
                "--host", "127.0.0.1", "--port", str(p), "--chunked-request", "--log-to-terminal",
                "--server-root", server_root, *root, *flags]
    return argv


def _hidden_from_others(path):
    """True when running as root and a folder on ``path`` denies others (mod_wsgi's daemon user)."""
    if os.geteuid() != 0:
        return False
    path = os.path.realpath(path)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


SYNC = "sync workers serve one request at a time per process"
# name: (argv for a port, checks it runs, the flags it needs and its own limits, for README)
ROWS = {
    "gunicorn-sync": (_gunicorn("-w", "2", "-k", "sync"), ALL - {"concurrent"}, "`-k sync`; " + SYNC),
    "gunicorn-sync-inline": (_gunicorn("-w", "2", "-k", "sync", app="matrix_asgi_app:inline_app"),
                             ALL - {"concurrent"}, "`ASGIMiddleware(app, inline=True)`, `-k sync`: no loop "
                             "thread, the worker drives the loop; " + SYNC),
    "gunicorn-gthread": (_gunicorn("-w", "1", "-k", "gthread", "--threads", "8"), ALL, "`-k gthread --threads N`"),
    "gunicorn-preload": (_gunicorn("-w", "2", "-k", "sync", "--preload"), ALL - {"concurrent"},
                         "`--preload`: the lifespan starts in each worker, after the fork; " + SYNC),
    "waitress": (lambda p: [PY, "-m", "waitress", "--host", "127.0.0.1",
                            "--port", str(p), "--threads", "8", "matrix_asgi_app:app"], ALL, "none"),
    "wsgiref": (lambda p: [PY, RUNNER, "wsgiref", str(p)], ALL - {"concurrent", "chunked"},
                "one request at a time; never decodes a chunked upload (the app reads an empty body)"),
    "granian": (lambda p: [PY, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(p),
                           "--blocking-threads", "8", "--log-level", "warning", "matrix_asgi_app:app"],
                ALL, "`--interface wsgi`"),
    "uwsgi-processes": (_uwsgi("--processes", "2"), ALL - {"concurrent", "chunked"},
                        "`--http-keepalive` (without it the `--http` router closes every connection); its "
                        "`--http` router never decodes a chunked upload"),
    "uwsgi-processes-lazy-apps": (_uwsgi("--processes", "2", "--lazy-apps"), ALL - {"concurrent", "chunked"},
                                  "as uwsgi-processes, with `--lazy-apps`"),
    "uwsgi-threads": (_uwsgi("--processes", "1", "--threads", "8", "--enable-threads"), ALL - {"chunked"},
                      "as uwsgi-processes, with `--threads`"),
    "uwsgi-threads-lazy-apps": (_uwsgi("--processes", "1", "--threads", "8", "--lazy-apps"), ALL - {"chunked"},
                                "as uwsgi-threads, with `--lazy-apps`"),
    "mod_wsgi-express-processes": (_mod_wsgi("--processes", "2", "--threads", "1"), ALL - {"concurrent"},
                                   "`--chunked-request` (without it a chunked upload gets 411); as root "
                                   "`--user`/`--group`, and a Python, packages and app that user can read "
                                   "(CI runs as root: `.ci/mod_wsgi_env.sh` builds them from the system "
                                   "Python)"),
    "mod_wsgi-express-threads": (_mod_wsgi("--processes", "1", "--threads", "8"), ALL,
                                 "as mod_wsgi-express-processes"),
    "cheroot": (lambda p: [PY, RUNNER, "cheroot", str(p)], ALL, "none"),
    "gevent-pywsgi": (lambda p: [PY, RUNNER, "gevent", str(p)], ALL,
                      "`gevent.monkey.patch_all()` first, as gevent asks"),
    "functions-framework": (lambda p: [_tool("functions-framework"),
                                       "--target", "gcf_function", "--source",
                                       os.path.join(HERE, "matrix_asgi_app.py"), "--host", "127.0.0.1",
                                       "--port", str(p)],
                            ALL, "Google Cloud Functions: the function returns "
                                 "`werkzeug.Response.from_app(ASGIMiddleware(app), request.environ)`"),
}
FRAMEWORKS = {name: "FastAPI, Starlette" for name in ROWS}
REQUIRES = {"uwsgi": "uwsgi", "mod_wsgi": "mod_wsgi-express", "functions-framework": "functions-framework"}


NEEDS = {"waitress": ["waitress"], "granian": ["granian"], "cheroot": ["cheroot"], "gevent-pywsgi": ["gevent"],
         "functions-framework": ["functions_framework"],
         **{name: ["gunicorn"] for name in ROWS if name.startswith("gunicorn")}}


@pytest.fixture(scope="module", params=mc.mode_params(ROWS))
def target(request, tmp_path_factory):
    name, mode = request.param
    mc.skip_without(NEEDS.get(name, ()))
    env = {}
    if name.startswith("mod_wsgi") and MOD_WSGI_ENV:
        assert os.path.exists(os.path.join(MOD_WSGI_ENV, "venv", "bin", "mod_wsgi-express")), (
            "A2WSGI_MOD_WSGI_ENV=%s is not an environment .ci/mod_wsgi_env.sh built" % MOD_WSGI_ENV)
        # mod_wsgi's daemon user reads the app, and writes the markers, only in that environment
        markers = tempfile.mkdtemp(prefix="markers-", dir=os.path.join(MOD_WSGI_ENV, "run"))
        env["PYTHONPATH"] = os.path.join(MOD_WSGI_ENV, "app")
    else:
        for prefix, tool in REQUIRES.items():
            if name.startswith(prefix) and not os.path.exists(_tool(tool)):
                pytest.skip("%s is not installed" % tool)
        if name.startswith("mod_wsgi") and _hidden_from_others(sys.base_prefix):
            pytest.skip("mod_wsgi-express as root runs its daemon as nobody, which cannot read this Python "
                        "(%s: a folder on its path is not readable by others); build one it can read with "
                        "`.ci/mod_wsgi_env.sh DEST` and set A2WSGI_MOD_WSGI_ENV=DEST" % sys.base_prefix)
        markers = str(tmp_path_factory.mktemp("markers"))
    os.chmod(markers, 0o777)  # mod_wsgi's daemon runs as another user
    env.update(mc.mode_env(mode, markers))
    port = free_port()
    with running(ROWS[name][0](port), port, env=env, cwd=HERE, timeout=60) as proc:
        t = mc.Target(port, "/fastapi", markers, proc.pid, mode)
        t.name = name
        yield t


def _run(request, t, check, fn, framework="fastapi"):
    if check not in ROWS[t.name][1]:
        pytest.skip("%s: %s" % (t.name, ROWS[t.name][2]))
    t.prefix = "/" + framework
    return fn(t)


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
def test_get(request, target, framework):
    _run(request, target, "get", mc.check_get, framework)


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
def test_post_echo_1mib(request, target, framework):
    _run(request, target, "echo", mc.check_post_echo, framework)


def test_chunked_upload(request, target):
    _run(request, target, "chunked", mc.check_chunked_upload)


def test_download_64mib_rss_bounded(request, target):
    _run(request, target, "download", mc.check_download_bounded)


@pytest.mark.parametrize("framework", ["fastapi", "starlette"])
def test_error_then_same_connection(request, target, framework):
    _run(request, target, "error", mc.check_error_then_reuse, framework)


def test_concurrent(request, target):
    _run(request, target, "concurrent", mc.check_concurrent)


def test_lifespan_startup_once_per_worker_before_its_first_request(request, target):
    _run(request, target, "lifespan", mc.check_lifespan_once_before_first_request)


# Last: where issue 13's pinned thread is not fixed yet, a one-thread server stays busy after it.
def test_client_leaving_endless_stream_stops_the_app(request, target):
    _run(request, target, "leave", mc.check_client_leaves_endless)


# The servers' own limits, shown with a bare WSGI app (no ASGIMiddleware).
@pytest.mark.parametrize("name", ["uwsgi-processes", "wsgiref"])
def test_server_does_not_decode_a_chunked_upload_for_a_bare_app(name, tmp_path):
    """Why these rows skip the chunked upload: the server hands even a bare WSGI app no body."""
    if name.startswith("uwsgi") and not os.path.exists(_tool("uwsgi")):
        pytest.skip("uwsgi is not installed")
    port = free_port()
    argv = ROWS[name][0](port)
    argv = [a.replace("matrix_asgi_app:app", "matrix_asgi_app:bare_wsgi") for a in argv]
    if name == "wsgiref":
        argv.append("bare_wsgi")
    with running(argv, port, env=mc.mode_env("compiled", str(tmp_path)), cwd=HERE) as proc:
        payload = os.urandom(3000)
        # one write holds the whole request, so the server has it all before it answers
        request = (b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                   b"Connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload))
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(request)
            answer = b""
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.") and body == b"", head
