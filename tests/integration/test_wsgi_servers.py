"""WSGIMiddleware on real ASGI servers (uvicorn, hypercorn) with real Flask and Django apps.

Each server runs as a subprocess on 127.0.0.1 and is stopped by pid; the pure and compiled hot
paths are chosen by ``A2WSGI_PURE`` in the server's environment.
"""

import asyncio
import hashlib
import os
import socket
import sys
import time

import httpx
import pytest

from servers import free_port, running

pytest.importorskip("flask")

SERVERS = ["uvicorn", "hypercorn"]
MODES = [
    pytest.param("pure", id="pure"),
    pytest.param("compiled", id="compiled", marks=pytest.mark.c_extension),
]
MIB = 1024 * 1024


def server_argv(server, target, port):
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--lifespan", "on"]
    return [sys.executable, "-m", "hypercorn", target, "--bind", "127.0.0.1:%d" % port,
            "--log-level", "warning", "--graceful-timeout", "2"]


class Server:
    def __init__(self, base, markers, mode):
        self.base = base
        self.markers = markers
        self.mode = mode

    def closed(self, marker, timeout=10.0):
        path = os.path.join(self.markers, "closed-" + marker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                return True
            time.sleep(0.02)
        return os.path.exists(path)


def start(request, tmp_path_factory, target, server, mode):
    pytest.importorskip(server)
    markers = str(tmp_path_factory.mktemp("markers"))
    port = free_port()
    env = {"A2WSGI_PURE": "1" if mode == "pure" else "0", "A2WSGI_TEST_MARKERS": markers}
    context = running(server_argv(server, target, port), port, env=env)
    context.__enter__()
    log = os.path.join(os.environ.get("TMPDIR", "/tmp"), "a2wsgi-server-%d.log" % port)

    def stop_and_check_log():
        context.__exit__(None, None, None)
        with open(log, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        for problem in ("Traceback", "Exception", "ERROR", "socket.send() raised"):
            assert problem not in text, "%s logged:\n%s" % (server, text[-3000:])

    request.addfinalizer(stop_and_check_log)
    return Server("http://127.0.0.1:%d" % port, markers, mode)


@pytest.fixture(scope="module", params=SERVERS)
def server_name(request):
    return request.param


@pytest.fixture(scope="module", params=MODES)
def flask_server(request, tmp_path_factory, server_name):
    return start(request, tmp_path_factory, "wsgi_apps:flask_asgi", server_name, request.param)


@pytest.fixture(scope="module", params=MODES)
def django_server(request, tmp_path_factory, server_name):
    pytest.importorskip("django")
    return start(request, tmp_path_factory, "wsgi_apps_django:django_asgi", server_name, request.param)


def expected_speedups(server):
    return "0" if server.mode == "pure" else "1"


def check_get(server, text):
    r = httpx.get(server.base + "/hello")
    assert r.status_code == 200 and r.text == text
    assert r.headers["x-speedups"] == expected_speedups(server)


def check_echo(server):
    body = os.urandom(MIB)
    r = httpx.post(server.base + "/echo", content=body, timeout=30)
    assert r.status_code == 200 and r.content == body


def check_download(server, mb):
    block = bytes(range(256)) * 256
    total = 0
    reads = 0
    digest = hashlib.sha256()
    with httpx.stream("GET", server.base + "/download?mb=%d" % mb, timeout=60) as r:
        assert r.status_code == 200
        assert r.headers["content-length"] == str(mb * MIB)
        for data in r.iter_raw(256 * 1024):
            total += len(data)
            reads += 1
            digest.update(data)
    assert total == mb * MIB
    assert reads > 1
    expected = hashlib.sha256()
    for _ in range(mb * MIB // len(block)):
        expected.update(block)
    assert digest.hexdigest() == expected.hexdigest()


def check_disconnect(server, name):
    """Read part of a never-ending stream, drop the connection; the app's close() must run."""
    host, port = server.base.rsplit("/", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /forever?marker=%s HTTP/1.1\r\nHost: x\r\n\r\n" % name.encode())
        received = 0
        while received < 1024 * 1024:
            data = sock.recv(65536)
            assert data, "the server closed the stream early"
            received += len(data)
    assert server.closed(name), "close() did not run after the client went away"


# ---- Flask ---------------------------------------------------------------------------------


def test_flask_get(flask_server):
    check_get(flask_server, "hello from flask")


def test_flask_post_echo_1mib(flask_server):
    check_echo(flask_server)


def test_flask_chunked_upload(flask_server):
    pieces = [os.urandom(50_000 + i) for i in range(40)]

    def body():
        yield from pieces

    r = httpx.post(flask_server.base + "/upload", content=body(), timeout=30)
    data = b"".join(pieces)
    assert r.status_code == 200
    assert r.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                        "content_length": None}


def test_flask_download_64mib_streamed(flask_server):
    check_download(flask_server, 64)


def test_flask_disconnect_mid_stream_runs_close(flask_server):
    check_disconnect(flask_server, "flask")


def test_flask_200_concurrent_requests(flask_server):
    async def go():
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=flask_server.base, limits=limits, timeout=30) as client:
            return await asyncio.gather(*(client.get("/slow/%d" % n) for n in range(200)))

    responses = asyncio.run(go())
    assert [r.status_code for r in responses] == [200] * 200
    assert [r.text for r in responses] == ["request %d" % n for n in range(200)]


# ---- Django --------------------------------------------------------------------------------


def test_django_get(django_server):
    check_get(django_server, "hello from django")


def test_django_post_echo_1mib(django_server):
    check_echo(django_server)


def test_django_download_64mib_streamed(django_server):
    check_download(django_server, 64)


def test_django_disconnect_mid_stream_runs_close(django_server):
    check_disconnect(django_server, "django")
