"""ASGIMiddleware(app, inline=True): the serving thread drives the event loop itself.

What is particular to inline mode: no loop thread is started, a multithreaded server and
``loop=`` are refused with the fix named, lifespan runs on the serving thread, a loop made before
a fork is never driven in the child, and tasks the app leaves running advance only while a request
drives the loop. The behaviour shared with the default mode (bodies, errors, disconnects,
``wait_time``) is covered by the A->W suite, which runs in both modes.
"""

import asyncio
import os
import signal
import threading
import time

import pytest

from test_asgi_support import HANG_GUARD, call, make_environ, read_body, respond


@pytest.fixture
def inline_mw(impl):
    from a2wsgi import ASGIMiddleware

    made = []

    def make(app, **kwargs):
        mw = ASGIMiddleware(app, inline=True, **kwargs)
        made.append(mw)
        return mw

    yield make
    for mw in made:
        mw.close(timeout=HANG_GUARD)


def _lifespan_app(events):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append((message["type"], threading.get_ident()))
                if message["type"] == "lifespan.startup":
                    scope["state"]["ready"] = True
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body, _ = await read_body(receive)
        events.append(("request", threading.get_ident()))
        await respond(send, b"ready=%r body=%s" % (scope["state"].get("ready"), body))

    return app


def test_loop_and_inline_together_is_a_type_error():
    from a2wsgi import ASGIMiddleware

    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(TypeError, match="loop= or inline=True"):
            ASGIMiddleware(_lifespan_app([]), loop=loop, inline=True)
    finally:
        loop.close()


def test_a_multithreaded_server_is_refused_with_the_fix(inline_mw):
    mw = inline_mw(_lifespan_app([]))
    with pytest.raises(RuntimeError, match="drop inline=True"):
        mw(make_environ(**{"wsgi.multithread": True}), lambda *a: None)


def test_served_on_the_calling_thread_with_lifespan_and_no_loop_thread(inline_mw):
    events = []
    mw = inline_mw(_lifespan_app(events))
    before = threading.active_count()
    response = call(mw, make_environ(method="POST", body=b"hi"))
    assert response.status == "200 OK"
    assert response.body == b"ready=True body=hi"
    assert threading.active_count() == before
    me = threading.get_ident()
    assert events == [("lifespan.startup", me), ("request", me)]
    mw.close(timeout=HANG_GUARD)
    assert events[-1] == ("lifespan.shutdown", me)
    assert mw.loop is None or mw.loop.is_closed()


def test_streamed_bodies_both_ways_with_the_same_bounds(inline_mw):
    from a2wsgi import asgi

    held = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body, _ = await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(64):
            await send({"type": "http.response.body", "body": body[:1000] + b"%03d" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"end"})

    mw = inline_mw(app)
    upload = os.urandom(1 << 20)

    def on_chunk(response):
        held.append(len(response.chunks))

    response = call(mw, make_environ(method="POST", body=upload), on_chunk=on_chunk)
    assert response.status == "200 OK"
    assert response.body == b"".join(upload[:1000] + b"%03d" % i for i in range(64)) + b"end"
    assert len(response.chunks) == 65
    assert asgi.HELD_CHUNKS == 16


def test_error_before_the_body_is_a_500_and_after_it_raised(inline_mw):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/late":
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ValueError("boom")

    mw = inline_mw(app)
    early = call(mw, make_environ("/early"))
    assert early.status.startswith("500")
    assert early.calls[-1][2][0] is ValueError
    late = call(mw, make_environ("/late"))
    assert late.status == "200 OK"
    assert late.body == b"part"
    assert isinstance(late.error, ValueError)


def test_client_leaving_mid_stream_stops_the_app(inline_mw):
    stopped = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] != "/stream":
            await respond(send, b"other")
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        except OSError:
            stopped.append("told")
            raise

    mw = inline_mw(app, wait_time=1.0)
    response = call(mw, make_environ("/stream"), max_chunks=3)
    assert response.body == b"tick" * 3
    # close() drove the loop until the app ended: nobody else would have
    assert stopped == ["told"]
    assert call(mw, make_environ("/other")).body == b"other"


def test_a_streaming_generator_finally_runs_when_close_returns(inline_mw):
    """Starlette's StreamingResponse: after the client leaves, the generator's finally (a lock or a
    connection released) has run by the time close() returns, without the garbage collector."""
    import gc

    pytest.importorskip("starlette", reason="Starlette is in the test extra (the main CI stage), not test-core")
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    marks = []

    async def endless(request):
        async def body():
            try:
                while True:
                    yield b"data: tick\n\n"
                    await asyncio.sleep(0)
            finally:
                marks.append("finally")

        return StreamingResponse(body(), media_type="text/event-stream")

    mw = inline_mw(Starlette(routes=[Route("/events", endless)]))
    gc.disable()
    try:
        response = call(mw, make_environ("/events"), max_chunks=3)
        assert response.chunks[0].startswith(b"data: tick")
        assert marks == ["finally"]
    finally:
        gc.enable()


def test_tasks_left_running_advance_only_while_a_request_drives_the_loop(inline_mw):
    ticks = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/start":
            async def background():
                while len(ticks) < 1000:
                    ticks.append(1)
                    await asyncio.sleep(0)

            scope["state"]  # the app's own business
            asyncio.get_running_loop().create_task(background())
        await respond(send, b"ok")

    mw = inline_mw(app, wait_time=0)
    call(mw, make_environ("/start"))
    seen = len(ticks)
    threading.Event().wait(0.05)
    assert len(ticks) == seen  # nobody drives the loop between requests
    call(mw, make_environ("/other"))
    assert len(ticks) > seen


def _wait_child(pid):
    """``os.waitpid`` with a hang guard: a child that does not exit is killed and fails the test."""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child did not exit within %s s" % HANG_GUARD)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Under pytest-xdist the worker runs execnet's I/O thread, so Python warns about fork().
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_loop_made_before_a_fork_is_never_driven_in_the_child(inline_mw):
    events = []
    mw = inline_mw(_lifespan_app(events))
    assert call(mw, make_environ()).status == "200 OK"
    parent_loop = mw.loop
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: serve one request, report, exit without running atexit hooks
        code = 1
        try:
            response = call(mw, make_environ())
            fresh = mw.loop is not parent_loop
            starts = sum(1 for kind, _ in events if kind == "lifespan.startup")
            os.write(write, b"%s %d %d" % (response.status.encode(), fresh, starts))
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    status = _wait_child(pid)
    report = os.read(read, 100).decode()
    os.close(read)
    assert os.WEXITSTATUS(status) == 0
    assert report == "200 OK 1 2"  # a new loop, and the lifespan started again in the child
    assert mw.loop is parent_loop
