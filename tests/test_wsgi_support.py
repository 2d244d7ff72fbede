"""Helpers shared by the WSGIMiddleware tests: scripted ASGI receive/send, scopes, thread counts.

No test lives here; the name only keeps the module beside the tests that import it.
"""

import asyncio
import threading

import pytest

HANG_GUARD = 10.0


def http_scope(path="/", method="GET", headers=(), root_path="", query_string=b"", **extra):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "root_path": root_path,
        "query_string": query_string,
        "headers": list(headers),
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
    }
    scope.update(extra)
    return scope


def run(coro, timeout=HANG_GUARD):
    """Run ``coro`` in a fresh loop, failing instead of hanging after ``timeout`` seconds."""

    async def guarded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


def other_tasks():
    """Tasks of the running loop besides the current one and the hang guard of ``run``."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and t.get_coro().__name__ != "guarded"}


class Script:
    """A scripted ASGI connection: ``receive`` yields ``messages`` in order, then waits until
    ``disconnect()`` (or forever); ``send`` records what the app sends and may fail or stall."""

    def __init__(self, messages=None, body=None, fail_send_after=None, on_send=None):
        if messages is None:
            messages = [{"type": "http.request", "body": body or b"", "more_body": False}]
        self.messages = list(messages)
        self.sent = []
        self.fail_send_after = fail_send_after
        self.on_send = on_send
        self.received = 0
        self._gone = None

    async def receive(self):
        if self.messages:
            self.received += 1
            message = self.messages.pop(0)
            if callable(message):
                message = await message()
            return message
        if self._gone is None:
            self._gone = asyncio.Event()
        await self._gone.wait()
        return {"type": "http.disconnect"}

    def disconnect(self):
        if self._gone is None:
            self._gone = asyncio.Event()
        self._gone.set()

    async def send(self, message):
        if self.fail_send_after is not None and len(self.sent) >= self.fail_send_after:
            raise OSError("scripted client went away")
        self.sent.append(message)
        if self.on_send is not None:
            result = self.on_send(message)
            if asyncio.iscoroutine(result):
                await result

    @property
    def start(self):
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.sent
        return starts[0]

    @property
    def status(self):
        return self.start["status"]

    @property
    def headers(self):
        return self.start["headers"]

    @property
    def body(self):
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")

    @property
    def complete(self):
        bodies = [m for m in self.sent if m["type"] == "http.response.body"]
        return bool(bodies) and not bodies[-1].get("more_body", False)


async def call(app, scope=None, script=None, **scope_args):
    """Call ``app`` once with ``scope`` (an HTTP scope by default) on a scripted connection."""
    if scope is None:
        scope = http_scope(**scope_args)
    if script is None:
        script = Script()
    await app(scope, script.receive, script.send)
    return script


async def shutdown(app):
    """Run a lifespan startup/shutdown cycle against ``app``; returns the messages it sent."""
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = []

    async def receive():
        return messages.pop(0)

    async def send(message):
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent


def worker_threads():
    return [t for t in threading.enumerate() if t.name == "a2wsgi-worker"]


@pytest.fixture
def mw(impl):
    """A factory for WSGIMiddleware instances whose workers are shut down after the test."""
    from a2wsgi.wsgi import WSGIMiddleware

    made = []

    def make(app, **kwargs):
        middleware = WSGIMiddleware(app, **kwargs)
        made.append(middleware)
        return middleware

    yield make
    for middleware in made:
        run(middleware.shutdown())
