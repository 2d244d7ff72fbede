"""Lifespan (ASGI lifespan spec 2.0): startup before the first request, state copied into each
request scope, shutdown on ``close()`` or at interpreter exit, apps without lifespan tolerated."""

import os
import subprocess
import sys
import textwrap

import pytest

from test_asgi_support import call, loop_threads, make_environ, middlewares, respond  # noqa: F401


def lifespan_app(events, fail=None, state_value=None):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    if fail:
                        await send({"type": "lifespan.startup.failed", "message": fail})
                        return
                    scope["state"]["db"] = state_value if state_value is not None else {"pool": 1}
                    scope["state"]["counter"] = 0
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        events.append("request")
        scope["state"]["counter"] += 1
        scope["state"]["db"]["seen"] = True
        await respond(send, repr(sorted(scope["state"])).encode())

    return app


def test_startup_before_first_request_and_state_copied(middlewares):
    events = []
    shared = {"pool": 1}
    mw = middlewares(lifespan_app(events, state_value=shared))
    assert events == []  # nothing runs before the first request (fork safety)
    assert call(mw, make_environ("/")).body == b"['counter', 'db']"
    assert call(mw, make_environ("/")).body == b"['counter', 'db']"
    assert events == ["lifespan.startup", "request", "request"]
    # shallow copy: the top-level keys are per request, the objects are shared
    runtime_state = mw._runtime.state
    assert runtime_state["counter"] == 0
    assert shared["seen"] is True and runtime_state["db"] is shared


def test_shutdown_on_close(middlewares, asgi_mode):
    events = []
    mw = middlewares(lifespan_app(events))
    call(mw, make_environ("/"))
    threads = len(loop_threads())
    mw.close()
    assert events[-1] == "lifespan.shutdown"
    # the default mode stops its loop thread; inline mode never started one
    assert len(loop_threads()) == threads - (asgi_mode == "thread")


def test_startup_failed_is_a_clear_error(middlewares):
    events = []
    mw = middlewares(lifespan_app(events, fail="database unreachable"))
    for _ in range(2):
        with pytest.raises(RuntimeError, match="lifespan startup failed.*database unreachable"):
            mw(make_environ("/"), lambda *a: None)
    assert "request" not in events


def test_app_raising_on_lifespan_is_tolerated(middlewares, caplog):
    async def app(scope, receive, send):
        assert scope["type"] == "http", "no lifespan here"
        await respond(send, b"fine")

    with caplog.at_level("INFO", logger="a2wsgi"):
        assert call(middlewares(app), make_environ("/")).body == b"fine"
    assert "lifespan appears unsupported" in caplog.text


def test_app_returning_at_once_on_lifespan_is_tolerated(middlewares):
    async def app(scope, receive, send):
        if scope["type"] == "http":
            await respond(send, b"fine")

    mw = middlewares(app)
    assert call(mw, make_environ("/")).body == b"fine"
    mw.close()


def test_request_after_close_starts_afresh(middlewares):
    events = []
    mw = middlewares(lifespan_app(events))
    call(mw, make_environ("/"))
    mw.close()
    call(mw, make_environ("/"))
    assert events == ["lifespan.startup", "request", "lifespan.shutdown", "lifespan.startup", "request"]


def _child_env(impl):
    env = dict(os.environ)
    env.pop("A2WSGI_PURE", None)
    if not impl.compiled:
        env["A2WSGI_PURE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__)] + sys.path)
    return env


def test_shutdown_at_interpreter_exit(impl, tmp_path):
    script = textwrap.dedent("""
        import a2wsgi, sys
        from a2wsgi import ASGIMiddleware
        from test_asgi_support import make_environ, call
        from test_asgi_lifespan import lifespan_app

        import atexit
        events = []
        # atexit runs last-registered first: this report runs after the middleware's shutdown
        atexit.register(lambda: print("events:", events, "speedups:", a2wsgi.SPEEDUPS, flush=True))
        mw = ASGIMiddleware(lifespan_app(events))
        assert call(mw, make_environ("/")).status == "200 OK"
        print("served", flush=True)
    """)
    out = subprocess.run([sys.executable, "-c", script], env=_child_env(impl), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "served" in out.stdout
    assert "events: ['lifespan.startup', 'request', 'lifespan.shutdown']" in out.stdout
    assert "speedups: %s" % impl.compiled in out.stdout
