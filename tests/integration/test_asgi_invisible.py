"""Issue 13 on real WSGI servers (gunicorn gthread, waitress), with a client that reuses its
connection (``http.client``): an app error before the response and one mid-stream, then a
second request on the same connection, through ASGIMiddleware and through a native WSGI app on
the same server (differential); and sse-starlette's EventSourceResponse with its client leaving."""

import http.client
import os
import socket
import sys
import time

import pytest

from servers import free_port, running

pytest.importorskip("sse_starlette")

HERE = os.path.dirname(os.path.abspath(__file__))

SERVERS = {
    "gunicorn-gthread": lambda port, threads: [
        sys.executable, "-m", "gunicorn", "asgi_invisible_apps:app", "-b", "127.0.0.1:%d" % port, "-w", "1",
        "-k", "gthread", "--threads", str(threads), "--graceful-timeout", "2", "--log-level", "critical"],
    "waitress": lambda port, threads: [sys.executable, os.path.join(HERE, "asgi_invisible_apps.py"),
                                       "waitress", str(port)],
}
if sys.platform == "win32":  # pragma: no cover
    del SERVERS["gunicorn-gthread"]


def _mode_params(servers):
    return [pytest.param((name, mode), id="%s-%s" % (name, mode),
                         marks=[pytest.mark.c_extension] if mode == "compiled" else [])
            for name in servers for mode in ("pure", "compiled")]


@pytest.fixture(scope="module", params=_mode_params(SERVERS))
def server(request, tmp_path_factory):
    name, mode = request.param
    markers = str(tmp_path_factory.mktemp("markers"))
    port = free_port()
    env = {"A2WSGI_PURE": "1" if mode == "pure" else "0", "A2WSGI_MARKERS": markers}
    with running(SERVERS[name](port, 4), port, env=env, cwd=HERE):
        yield port, markers


def exchange(port, side, first):
    """GET /side/first, then GET /side/ok on the same connection: what the client saw."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/%s/%s" % (side, first))
        response = conn.getresponse()
        status = response.status
        connection = (response.getheader("Connection") or "").lower()
        try:
            body = response.read()
        except http.client.IncompleteRead as exc:
            body = ("incomplete", exc.partial)
        sock = conn.sock
        try:
            conn.request("GET", "/%s/ok" % side)
            second = conn.getresponse()
            after = (second.status, second.read(), "same connection" if conn.sock is sock and sock is not None
                     else "new connection")
        except (ConnectionError, http.client.RemoteDisconnected, socket.error) as exc:
            after = ("error", type(exc).__name__)
        return {"status": status, "connection": connection, "body": body, "then": after}
    finally:
        conn.close()


@pytest.mark.parametrize("side", ["bridge", "raw"], ids=["starlette", "bare-asgi"])
@pytest.mark.parametrize("first", ["raise-before", "raise-mid"])
def test_error_then_reuse_the_connection_as_native(server, first, side):
    port, _ = server
    native = exchange(port, "native", first)
    bridged = exchange(port, side, first)
    if first == "raise-before":
        # nothing went out: a 500, then the next request succeeds on the same connection, or the
        # 500 said Connection: close (and http.client opened a new one). Never a reset.
        assert bridged["status"] == native["status"] == 500
        assert bridged["then"][:2] == (200, b"ok"), bridged
        assert bridged["then"][2] == "same connection" or bridged["connection"] == "close", bridged
        # the native app's next request succeeds as well (Starlette answers its own 500 and
        # re-raises; the server then keeps the connection, as uvicorn does for that app)
        assert native["then"][:2] == (200, b"ok"), native
    else:
        # the headers (and "part") went out before the error: the server can only cut the chunked
        # body short, for the bridge exactly as for the native app (the client sees an incomplete
        # body, so it knows the connection is unusable)
        assert bridged["status"] == native["status"] == 200
        assert bridged["body"] == native["body"] == ("incomplete", b"part"), (bridged, native)
        assert bridged["connection"] == native["connection"]
        assert bridged["then"] == native["then"], (bridged, native)

def test_sse_client_leaving_frees_the_thread(tmp_path, impl_mode=None):
    """gunicorn gthread with ONE thread: an SSE client (pings every 0.1 s, no event ever) leaves;
    the thread serves the next request at once and the stream's finally has run."""
    markers = str(tmp_path)
    port = free_port()
    with running(SERVERS["gunicorn-gthread"](port, 1), port, env={"A2WSGI_MARKERS": markers}, cwd=HERE):
        for n in range(3):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /bridge/sse?name=c%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
            got = b""
            while b"ping" not in got:
                got += sock.recv(65536)
            sock.close()
            left = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/bridge/ok")
            assert conn.getresponse().read() == b"ok"
            conn.close()
            freed = time.monotonic() - left
            assert freed < 5.0, "the only server thread stayed pinned %.1f s" % freed
            marker = os.path.join(markers, "sse-finally-c%d" % n)
            deadline = time.monotonic() + 5
            while not os.path.exists(marker) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert os.path.exists(marker), "the event generator's finally did not run"
