"""The examples in examples/ run for real: real servers on 127.0.0.1, stopped by pid."""

import os
import socket
import sys
import time

import httpx
import pytest

from servers import free_port, running

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")

pytestmark = pytest.mark.skipif(not os.path.isdir(EXAMPLES), reason="examples/ is not beside tests/")

MODES = [
    pytest.param({"A2WSGI_PURE": "1"}, id="pure"),
    pytest.param({"A2WSGI_PURE": "0"}, id="compiled", marks=pytest.mark.c_extension),
]


def _env(mode, tmp_path, **extra):
    env = dict(mode)
    env["PYTHONPATH"] = ROOT
    env["EXAMPLE_LOG"] = str(tmp_path / "example.log")
    env.update(extra)
    return env


def _uvicorn(target, port):
    return [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"]


def _gunicorn(target, port, *extra):
    return [sys.executable, "-m", "gunicorn", target, "--bind", "127.0.0.1:%d" % port,
            "--log-level", "warning", "--graceful-timeout", "5", *extra]


def _read_log(tmp_path):
    path = tmp_path / "example.log"
    return path.read_text().splitlines() if path.exists() else []


def _wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("mode", MODES)
def test_flask_mounted_in_fastapi(mode, tmp_path):
    port = free_port()
    with running(_uvicorn("examples.flask_in_fastapi:app", port), port, env=_env(mode, tmp_path), cwd=ROOT):
        base = "http://127.0.0.1:%d" % port
        assert httpx.get(base + "/").json()["framework"] == "fastapi"
        data = httpx.get(base + "/flask/").json()
        assert data["framework"] == "flask"
        assert data["script_name"] == "/flask"
        assert data["path_info"] == "/"
        assert data["hello_url"] == "/flask/hello/world"
        assert data["external_url"] == "http://127.0.0.1:%d/flask/hello/world" % port
        r = httpx.get(base + data["hello_url"])
        assert r.status_code == 200 and r.text == "Hello, world, from Flask!"


@pytest.mark.parametrize("mode", MODES)
def test_django_on_uvicorn(mode, tmp_path):
    port = free_port()
    with running(_uvicorn("examples.django_app:app", port), port, env=_env(mode, tmp_path), cwd=ROOT):
        base = "http://127.0.0.1:%d" % port
        r = httpx.get(base + "/")
        assert r.status_code == 200 and r.text == "Hello from Django on an ASGI server!"
        body = os.urandom(300_000)
        data = httpx.post(base + "/echo", content=body).json()
        assert data == {"method": "POST", "size": len(body), "path": "/echo", "script_name": ""}


@pytest.mark.parametrize("workers", [[], ["--threads", "4"]], ids=["sync", "gthread"])
@pytest.mark.parametrize("mode", MODES)
def test_fastapi_on_gunicorn(mode, workers, tmp_path):
    port = free_port()
    argv = _gunicorn("examples.fastapi_on_gunicorn:app", port, "--workers", "1", *workers)
    with running(argv, port, env=_env(mode, tmp_path), cwd=ROOT) as proc:
        base = "http://127.0.0.1:%d" % port
        r = httpx.get(base + "/")
        assert r.status_code == 200
        assert r.json()["message"] == "Hello from FastAPI on a WSGI server"
        r = httpx.post(base + "/orders/7")
        assert r.json() == {"order": 7, "status": "accepted"}
        assert _wait_for(lambda: any(l.startswith("order 7 processed") for l in _read_log(tmp_path)))
    lines = _read_log(tmp_path)
    assert sum(l.startswith("startup") for l in lines) == 1
    assert proc.returncode is not None
    assert _wait_for(lambda: any(l.startswith("shutdown") for l in _read_log(tmp_path)), 5)


@pytest.mark.parametrize("mode", MODES)
def test_passenger_style_prefork(mode, tmp_path):
    port = free_port()
    argv = _gunicorn("examples.passenger_wsgi:application", port, "--preload", "--workers", "2")
    with running(argv, port, env=_env(mode, tmp_path), cwd=ROOT):
        base = "http://127.0.0.1:%d" % port
        pids = set()
        for _ in range(40):
            with httpx.Client() as client:  # a new connection each time, to reach both workers
                r = client.get(base + "/")
            assert r.status_code == 200
            assert r.json()["message"] == "FastAPI behind Passenger"
            pids.add(r.json()["pid"])
        assert len(pids) >= 1


def _read_events(port, path, count):
    """Open a raw connection, read ``count`` SSE events, then drop the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n" % path).encode())
    data = b""
    while data.count(b"data: tick") < count:
        chunk = sock.recv(65536)
        assert chunk, "server closed the stream early"
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0]
    assert b"text/event-stream" in head.lower()
    return body


@pytest.mark.parametrize("mode", MODES)
def test_sse_asgi_app_on_gunicorn_stops_on_disconnect(mode, tmp_path):
    port = free_port()
    argv = _gunicorn("examples.sse:wsgi_app", port, "--threads", "4")
    with running(argv, port, env=_env(mode, tmp_path), cwd=ROOT):
        body = _read_events(port, "/events", 5)
        assert b"data: tick 0" in body and b"data: tick 4" in body
        assert _wait_for(lambda: "asgi closed" in _read_log(tmp_path))


@pytest.mark.parametrize("mode", MODES)
def test_sse_wsgi_app_on_uvicorn_stops_on_disconnect(mode, tmp_path):
    port = free_port()
    with running(_uvicorn("examples.sse:asgi_app", port), port, env=_env(mode, tmp_path), cwd=ROOT):
        body = _read_events(port, "/events", 5)
        assert b"data: tick 0" in body and b"data: tick 4" in body
        assert _wait_for(lambda: "wsgi closed" in _read_log(tmp_path))
