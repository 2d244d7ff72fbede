"""WSGIMiddleware is invisible on real servers (issue 13, W->A): the same routes as a native ASGI
app give the client the same result, on a connection it reuses (http.client); and an error raised
in a Flask view reaches an outer framework's exception handler (Starlette, FastAPI, Connexion).
"""

import http.client
import sys

import pytest

from servers import free_port, running

pytest.importorskip("flask")
pytest.importorskip("bottle")

SERVERS = ["uvicorn", "hypercorn"]


def server_argv(server, target, port):
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "critical", "--lifespan", "off"]
    return [sys.executable, "-m", "hypercorn", target, "--bind", "127.0.0.1:%d" % port,
            "--log-level", "critical", "--graceful-timeout", "1"]


def outcome(conn, path):
    """What the client sees for ``path`` then ``/ok`` on the same connection: for each, the
    status, the body read (or the error reading it), and whether the server said close."""
    seen = []
    for p in (path, "/ok"):
        try:
            conn.request("GET", p)
            response = conn.getresponse()
            status = response.status
            close = (response.getheader("connection") or "").lower() == "close"
            try:
                body = response.read()
            except http.client.IncompleteRead as exc:
                # a response cut short: the client knows the connection is done
                seen.append((status, ("incomplete", exc.partial), True))
                break
            seen.append((status, body, close))
            if close:
                break
        except (ConnectionError, http.client.RemoteDisconnected) as exc:
            seen.append(("reset", type(exc).__name__))
            break
    return seen


def serve_and_probe(server, target, path):
    pytest.importorskip(server)
    port = free_port()
    with running(server_argv(server, target, port), port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            return outcome(conn, path)
        finally:
            conn.close()


def never_a_reset(seen):
    """The second request succeeds, or the first response said Connection: close."""
    first = seen[0]
    assert first[0] != "reset", seen
    if len(seen) == 2:
        assert seen[1] == (200, b"ok", False) or seen[1][2], seen
    else:
        assert first[2], seen


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("path", ["/raise", "/stream-raise"])
def test_flask_error_same_as_native(server, path):
    native = serve_and_probe(server, "wsgi_invisible_apps:native", path)
    bridged = serve_and_probe(server, "wsgi_invisible_apps:flask_asgi", path)
    assert bridged == native
    never_a_reset(bridged)


@pytest.mark.parametrize("server", SERVERS)
def test_bottle_error_page_keeps_the_connection(server):
    seen = serve_and_probe(server, "wsgi_invisible_apps:bottle_asgi", "/raise")
    assert seen[0][0] == 500 and b"Error: 500" in seen[0][1]
    never_a_reset(seen)
    assert len(seen) == 2 and seen[1] == (200, b"ok", False)


@pytest.mark.parametrize("server", SERVERS)
def test_bottle_stream_error_same_as_native(server):
    native = serve_and_probe(server, "wsgi_invisible_apps:native", "/stream-raise")
    bridged = serve_and_probe(server, "wsgi_invisible_apps:bottle_asgi", "/stream-raise")
    assert bridged == native
    never_a_reset(bridged)


# ------------------------------------------------------------------- outer exception handlers

def asgi_get(app, path):
    """GET ``path`` from ``app`` in process (httpx over ASGI), lifespan not needed."""
    import asyncio

    import httpx

    async def go():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    return asyncio.run(go())


@pytest.mark.parametrize("framework", ["starlette", "fastapi"])
def test_flask_mounted_error_reaches_the_exception_handler(framework):
    pytest.importorskip(framework)
    import wsgi_invisible_apps as apps

    app = apps.make_starlette() if framework == "starlette" else apps.make_fastapi()
    response = asgi_get(app, "/flask/raise")
    assert response.status_code == 418
    assert response.json() == {"handled": "before the response"}
    assert asgi_get(app, "/flask/ok").text == "ok"


def test_connexion_problem_handler_answers_a_flask_view_error(tmp_path):
    pytest.importorskip("connexion")
    import wsgi_invisible_apps as apps

    app = apps.make_connexion(str(tmp_path))
    response = asgi_get(app, "/raise")
    assert response.status_code == 418
    assert response.json() == {"problem": "in the Flask view"}
