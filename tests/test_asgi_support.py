"""Helpers shared by the ASGIMiddleware tests: environs, a scripted WSGI server call, waiting.

No test lives here; the name only keeps the module beside the tests that import it.
"""

import asyncio
import io
import sys
import threading
import time
import wsgiref.util

import pytest

HANG_GUARD = 20.0


def make_environ(path="/", method="GET", body=None, content_length=True, query="", **extra):
    """A PEP 3333 environ as wsgiref's test defaults build it; ``body`` becomes ``wsgi.input``."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    if body is not None:
        environ["wsgi.input"] = body if hasattr(body, "read") else io.BytesIO(body)
        if content_length is True:
            environ["CONTENT_LENGTH"] = str(len(body.getbuffer()) if hasattr(body, "getbuffer") else len(body))
        elif content_length is not None and content_length is not False:
            environ["CONTENT_LENGTH"] = str(content_length)
    wsgiref.util.setup_testing_defaults(environ)
    environ.update(extra)
    return environ


class Response:
    """What one WSGI call produced, as a server would see it."""

    def __init__(self):
        self.calls = []       # (status, headers, exc_info) per start_response call
        self.chunks = []
        self.result = None
        self.error = None

    @property
    def status(self):
        return self.calls[-1][0] if self.calls else None

    @property
    def headers(self):
        return self.calls[-1][1] if self.calls else None

    @property
    def body(self):
        return b"".join(self.chunks)

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None and self.chunks:
            raise exc_info[1].with_traceback(exc_info[2])
        self.calls.append((status, headers, exc_info))
        return self.chunks.append


def call(app, environ, max_chunks=None, on_chunk=None):
    """Call ``app`` like a WSGI server: iterate the result (up to ``max_chunks`` non-empty
    chunks), then close it. An exception from the iterable is kept in ``response.error``."""
    response = Response()
    result = response.result = app(environ, response.start_response)
    try:
        for chunk in result:
            assert isinstance(chunk, bytes)
            if chunk:
                response.chunks.append(chunk)
                if on_chunk is not None:
                    on_chunk(response)
                if max_chunks is not None and len(response.chunks) >= max_chunks:
                    break
    except Exception as exc:
        response.error = exc
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return response


#: Inline-mode middlewares made by the ``middlewares`` fixture in the running test: nothing runs on
#: their loop unless a thread drives it, so waiting drives them (as a next request would).
_INLINE = []


def pause(seconds=0.005):
    """Let time pass; in an inline-mode test, by driving its loops (as a next request would)."""
    loops = [mw.loop for mw in _INLINE if mw.loop is not None and not mw.loop.is_closed()]
    if not loops:
        time.sleep(seconds)
        return
    for loop in loops:
        if not loop.is_running():
            loop.run_until_complete(asyncio.sleep(seconds / len(loops)))


def wait_until(predicate, timeout=HANG_GUARD):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        pause()
    return predicate()


def on_loop(mw, func):
    """Run ``func()`` on the middleware's loop and return its result."""
    async def run():
        return func()

    if getattr(mw, "inline", False):
        return mw.loop.run_until_complete(run())
    return asyncio.run_coroutine_threadsafe(run(), mw.loop).result(HANG_GUARD)


def pending_tasks(mw):
    """Tasks not done on the middleware's loop, except the lifespan task and this probe."""
    def probe():
        current = asyncio.current_task()
        return [t for t in asyncio.all_tasks() if t is not current and not t.done()
                and "_lifespan_main" not in repr(t.get_coro())]

    return on_loop(mw, probe)


def loop_threads():
    return [t for t in threading.enumerate() if t.name == "a2wsgi-asgi-loop"]


@pytest.fixture
def middlewares(impl, asgi_mode):
    """``make(app, **kwargs)``: an ASGIMiddleware closed at the end of the test, in the mode of
    ``asgi_mode`` (a test that passes ``loop=`` runs in the thread mode only: inline mode has no
    loop to pass)."""
    from a2wsgi import ASGIMiddleware

    made = []

    def make(app, **kwargs):
        if asgi_mode == "inline":
            if "loop" in kwargs:
                pytest.skip("loop= runs the app on the caller's loop thread; inline mode has none")
            kwargs["inline"] = True
        mw = ASGIMiddleware(app, **kwargs)
        made.append(mw)
        if asgi_mode == "inline":
            _INLINE.append(mw)
        return mw

    yield make
    for mw in made:
        mw.close(timeout=HANG_GUARD)
    _INLINE.clear()


def threads_only(asgi_mode):
    """Skip an inline-mode run of a test that calls one middleware from several threads at once:
    inline mode serves one request at a time per process (a multithreaded server is refused)."""
    if asgi_mode == "inline":
        pytest.skip("several WSGI threads at once: inline mode serves one request at a time")


async def read_body(receive):
    """The whole request body, or None if ``http.disconnect`` came first; and the messages."""
    messages = []
    body = b""
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] == "http.disconnect":
            return None, messages
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body, messages


async def respond(send, body=b"", status=200, headers=((b"content-type", b"text/plain"),)):
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    await send({"type": "http.response.body", "body": body})


async def lifespan_ignored(scope, receive, send):
    """Most test apps do not care about lifespan: they return at once (tolerated)."""
    return None


PY = sys.executable
