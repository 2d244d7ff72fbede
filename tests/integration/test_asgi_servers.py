"""ASGIMiddleware on real WSGI servers (gunicorn sync, gthread and --preload, waitress, wsgiref),
serving a Starlette app and a FastAPI app, driven over HTTP on 127.0.0.1; servers stopped by pid."""

import hashlib
import http.client
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from servers import free_port, running

pytest.importorskip("starlette")
pytest.importorskip("fastapi")

HERE = os.path.dirname(os.path.abspath(__file__))
PIECE = bytes(range(256)) * 256

SERVERS = {
    "gunicorn-sync": lambda port: [sys.executable, "-m", "gunicorn", "asgi_apps:app", "-b",
                                   "127.0.0.1:%d" % port, "-w", "2", "-k", "sync", "--graceful-timeout", "5",
                                   "--log-level", "warning"],
    "gunicorn-gthread": lambda port: [sys.executable, "-m", "gunicorn", "asgi_apps:app", "-b",
                                      "127.0.0.1:%d" % port, "-w", "1", "-k", "gthread", "--threads", "8",
                                      "--graceful-timeout", "5", "--log-level", "warning"],
    "gunicorn-preload": lambda port: [sys.executable, "-m", "gunicorn", "asgi_apps:app", "-b",
                                      "127.0.0.1:%d" % port, "-w", "2", "-k", "sync", "--preload",
                                      "--graceful-timeout", "5", "--log-level", "warning"],
    "waitress": lambda port: [sys.executable, os.path.join(HERE, "asgi_apps_runner.py"), "waitress", str(port)],
    "wsgiref": lambda port: [sys.executable, os.path.join(HERE, "asgi_apps_runner.py"), "wsgiref", str(port)],
}
if sys.platform == "win32":  # pragma: no cover
    SERVERS = {k: v for k, v in SERVERS.items() if not k.startswith("gunicorn")}

PARAMS = [pytest.param((server, mode), id="%s-%s" % (server, mode),
                       marks=[pytest.mark.c_extension] if mode == "compiled" else [])
          for server in SERVERS for mode in ("pure", "compiled")]
FRAMEWORKS = ["starlette", "fastapi"]


class Server:
    def __init__(self, name, mode, base, markers, proc):
        self.name, self.mode, self.base, self.markers, self.proc = name, mode, base, markers, proc

    def url(self, framework, path):
        return "%s/%s%s" % (self.base, framework, path)

    def marker(self, name, timeout=15.0):
        path = os.path.join(self.markers, name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                return True
            time.sleep(0.02)
        return False

    def markers_named(self, prefix):
        return sorted(n for n in os.listdir(self.markers) if n.startswith(prefix))


@pytest.fixture(scope="module", params=PARAMS)
def server(request, tmp_path_factory):
    name, mode = request.param
    markers = str(tmp_path_factory.mktemp("markers"))
    port = free_port()
    env = {"A2WSGI_PURE": "1" if mode == "pure" else "0", "A2WSGI_MARKERS": markers}
    with running(SERVERS[name](port), port, env=env, cwd=HERE) as proc:
        srv = Server(name, mode, "http://127.0.0.1:%d" % port, markers, proc)
        yield srv
    if True:
        startups = srv.markers_named("startup-")
        shutdowns = srv.markers_named("shutdown-")
        assert startups, "no lifespan startup ran"
        assert sorted(s.replace("startup-", "shutdown-") for s in startups) == shutdowns, (
            "lifespan shutdown missing at exit: %s vs %s" % (startups, shutdowns))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_get_with_lifespan_state(server, framework):
    response = httpx.get(server.url(framework, "/"))
    assert response.status_code == 200
    data = response.json()
    assert data["framework"] == framework
    assert data["greeting"] == "hello from %s lifespan" % framework
    if server.name == "gunicorn-preload":
        # created before the fork; the loop and the lifespan run in the worker, not the master
        assert data["pid"] != server.proc.pid
        assert "startup-%s-%d" % (framework, server.proc.pid) not in server.markers_named("startup-")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_post_echo_1mib(server, framework):
    body = os.urandom(1024 * 1024)
    response = httpx.post(server.url(framework, "/echo"), content=body, timeout=30)
    assert response.status_code == 200
    assert response.content == body


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_chunked_upload(server, framework):
    if server.name == "wsgiref":
        pytest.skip("wsgiref does not support chunked request bodies (no wsgi.input_terminated)")
    digest = hashlib.sha256()
    pieces = [os.urandom(50_000 + i * 1000) for i in range(40)]
    for piece in pieces:
        digest.update(piece)

    def body():
        yield from pieces

    response = httpx.post(server.url(framework, "/upload"), content=body(), timeout=30)
    assert response.status_code == 200
    data = response.json()
    assert data["size"] == sum(map(len, pieces))
    assert data["sha256"] == digest.hexdigest()
    assert data["pieces"] > 1  # streamed to the app in pieces


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_64mib_streamed_download(server, framework):
    size = 64 * 1024 * 1024
    got = reads = 0
    with httpx.stream("GET", server.url(framework, "/download?size=%d" % size), timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(size)
        for piece in response.iter_bytes(256 * 1024):
            if reads % 64 == 0:
                offset = got % len(PIECE)
                assert piece[:64] == (PIECE + PIECE)[offset:offset + 64][:len(piece[:64])]
            got += len(piece)
            reads += 1
    assert got == size
    assert reads > 100  # read incrementally, not in one piece


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_client_disconnect_mid_stream(server, framework):
    name = "%s-%s" % (framework, uuid.uuid4().hex)
    with httpx.Client(timeout=30) as client:
        with client.stream("GET", server.url(framework, "/forever?name=" + name)) as response:
            assert response.status_code == 200
            seen = 0
            for piece in response.iter_raw():
                seen += len(piece)
                if seen > 200_000:
                    break
    assert server.marker("disconnect-" + name), "the app did not see the disconnect"
    assert httpx.get(server.url(framework, "/")).status_code == 200  # the worker is free again


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_background_task(server, framework):
    name = "%s-%s" % (framework, uuid.uuid4().hex)
    response = httpx.post(server.url(framework, "/background?name=" + name))
    assert response.status_code == 200 and response.text == "ok"
    assert server.marker("background-" + name)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_exception_is_500(server, framework):
    response = httpx.get(server.url(framework, "/error"))
    assert response.status_code == 500
    assert httpx.get(server.url(framework, "/")).status_code == 200


def test_200_concurrent_requests(server):
    port = int(server.base.rsplit(":", 1)[1])
    barrier = threading.Barrier(200, timeout=30)

    def one(n):
        framework = FRAMEWORKS[n % 2]
        body = b"request %d " % n * 10
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.connect()
            barrier.wait()  # all 200 connections open before any request is sent
            conn.request("POST", "/%s/echo" % framework, body=body)
            response = conn.getresponse()
            return response.status == 200 and response.read() == body
        finally:
            conn.close()

    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))
    assert all(results)
