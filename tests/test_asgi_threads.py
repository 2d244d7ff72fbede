"""Many WSGI threads on one middleware, the user's loop, fork safety, asyncio debug mode, and the
number of thread hops a small request costs."""

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from a2wsgi._handoff import Signal

from test_asgi_support import (threads_only, HANG_GUARD, Response, call, loop_threads, make_environ,  # noqa: F401
                               middlewares, pending_tasks, read_body, respond)


def run_in_thread(loop):
    """Run ``loop`` forever on a new thread; return the thread once the loop runs (the middleware
    refuses a user loop that is not running yet)."""
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + HANG_GUARD
    while not loop.is_running():
        assert time.monotonic() < deadline, "the loop thread did not start"
        time.sleep(0.001)
    return thread


async def mixed_app(scope, receive, send):
    if scope["type"] != "http":
        return
    body, _ = await read_body(receive)
    kind = scope["path"]
    if kind == "/error":
        raise RuntimeError("mixed: error")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    if kind == "/stream":
        for i in range(40):
            await send({"type": "http.response.body", "body": b"%04d" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.body", "body": body})


def one_request(mw, n):
    kind = ("/echo", "/stream", "/upload", "/disconnect", "/error")[n % 5]
    token = b"token-%d-" % n + (b"u" * 100_000 if kind == "/upload" else b"")
    environ = make_environ("/stream" if kind == "/disconnect" else kind, "POST", token)
    response = call(mw, environ, max_chunks=3 if kind == "/disconnect" else None)
    if kind in ("/echo", "/upload"):
        assert response.body == token
    elif kind == "/stream":
        assert response.body == b"".join(b"%04d" % i for i in range(40))
    elif kind == "/error":
        assert response.status.startswith("500 ")
    return kind


def test_many_wsgi_threads_share_one_middleware(middlewares, asgi_mode):
    threads_only(asgi_mode)
    import logging

    mw = middlewares(mixed_app)
    logging.getLogger("a2wsgi").disabled = True
    try:
        with ThreadPoolExecutor(16) as pool:
            kinds = list(pool.map(lambda n: one_request(mw, n), range(800)))
    finally:
        logging.getLogger("a2wsgi").disabled = False
    assert len(kinds) == 800
    assert pending_tasks(mw) == []
    assert len([t for t in loop_threads()]) >= 1


def test_user_loop_used_as_is(middlewares):
    loop = asyncio.new_event_loop()
    thread = run_in_thread(loop)
    seen = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            seen.append(asyncio.get_running_loop())
            await respond(send, b"on your loop")

    try:
        before = len(loop_threads())
        mw = middlewares(app, loop=loop)
        assert mw.loop is loop
        assert call(mw, make_environ("/")).body == b"on your loop"
        assert seen == [loop]
        assert len(loop_threads()) == before  # no loop thread of ours
        mw.close()
        assert loop.is_running()  # the user's loop is the user's to stop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(HANG_GUARD)
        loop.close()


def test_user_loop_not_running_is_a_clear_error(middlewares):
    loop = asyncio.new_event_loop()
    try:
        mw = middlewares(mixed_app, loop=loop)
        with pytest.raises(RuntimeError, match="not running"):
            mw(make_environ("/"), lambda *a: None)
    finally:
        loop.close()


class CountingLoop(asyncio.SelectorEventLoop):
    hops = 0

    def call_soon_threadsafe(self, *args, **kwargs):
        if threading.current_thread() is not self._runner:
            self.hops += 1
        return super().call_soon_threadsafe(*args, **kwargs)


class CountingSignal(Signal):
    __slots__ = ()
    puts = [0]

    def set(self):
        self.puts[0] += 1
        return super().set()


def test_one_hop_and_one_wakeup_per_small_request(middlewares, monkeypatch):
    # The end of a response (its head, last chunk and finish) is handed over in one lock round,
    # so a WSGI thread cannot wake between them and be woken again.
    import a2wsgi.asgi as mod

    loop = CountingLoop()
    loop._runner = run_in_thread(loop)
    monkeypatch.setattr(mod, "Signal", CountingSignal)
    monkeypatch.setattr(mod, "_thread_signals", threading.local())  # threads make a CountingSignal

    async def echo(scope, receive, send):
        if scope["type"] == "http":
            body, _ = await read_body(receive)
            await respond(send, body)

    try:
        mw = middlewares(echo, loop=loop)
        call(mw, make_environ("/", "POST", b"warm-up"))
        n = 200
        loop.hops = 0
        CountingSignal.puts[0] = 0
        for i in range(n):
            assert call(mw, make_environ("/", "POST", b"small %d" % i)).body == b"small %d" % i
        assert loop.hops == n            # one call_soon_threadsafe per request
        assert 0 < CountingSignal.puts[0] <= n  # at most one wake-up of the WSGI thread per request
    finally:
        loop.call_soon_threadsafe(loop.stop)
        loop._runner.join(HANG_GUARD)
        loop.close()


#: Whether the middleware's own loop starts the app task eagerly (asyncio's eager_start, Python 3.12+).
EAGER = sys.version_info >= (3, 12)


def test_passes_of_the_middlewares_own_loop_per_small_request(middlewares, asgi_mode):
    """On its own loop (Python 3.12 and later) the middleware starts the app task eagerly: the
    app's first step runs in the callback the hop scheduled, and an app that ends there ends the
    call at once, so a small request takes one pass of the loop. Otherwise the task's first step
    runs in the next pass and its end is handled in the one after that: three."""
    if asgi_mode == "inline":
        pytest.skip("inline mode drives its loop from the serving thread (tests/test_asgi_inline.py)")

    async def echo(scope, receive, send):
        if scope["type"] == "http":
            body, _ = await read_body(receive)
            await respond(send, body)

    mw = middlewares(echo)
    call(mw, make_environ("/", "POST", b"warm-up"))
    loop = mw.loop
    passes = [0]
    run_once = loop._run_once

    def counting_run_once():
        passes[0] += 1
        run_once()

    loop._run_once = counting_run_once
    try:
        n = 200
        for i in range(n):
            assert call(mw, make_environ("/", "POST", b"small %d" % i)).body == b"small %d" % i
    finally:
        del loop._run_once
    # a request whose hop's self-pipe byte is read in a pass after its callback ran takes two
    if EAGER:
        assert n <= passes[0] <= n + n // 4
    else:
        assert 3 * n <= passes[0] <= 3 * n + n // 4


def test_app_task_is_current_from_its_first_step_and_what_it_starts_runs_later(middlewares):
    """Eager or not, the app runs as a task of its own from its first step (anyio and sniffio
    ask asyncio.current_task()), and a task it creates runs only once the app awaits."""
    seen = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        me = asyncio.current_task()
        order = []

        async def child():
            order.append("child")

        started = asyncio.get_running_loop().create_task(child())
        order.append("app")
        await started
        seen.append((me is not None and not me.done(), order))
        await respond(send, b"ok")

    assert call(middlewares(app), make_environ("/")).body == b"ok"
    assert seen == [(True, ["app", "child"])]


def test_a_body_ended_in_the_first_step_goes_out_before_the_task_ends(middlewares):
    """An app that sends its whole response without awaiting anything else, and then goes on
    (background work), has its response handed over at once; close() waits for the rest."""
    release = threading.Event()
    finished = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        await asyncio.get_running_loop().run_in_executor(None, release.wait, HANG_GUARD)
        finished.append(True)

    mw = middlewares(app)
    response = Response()
    result = mw(make_environ("/"), response.start_response)
    assert b"".join(result) == b"done" and response.status == "200 OK"
    assert finished == []
    release.set()
    result.close()
    assert finished == [True]


def _child_env(impl, **extra):
    env = dict(os.environ)
    env.pop("A2WSGI_PURE", None)
    if not impl.compiled:
        env["A2WSGI_PURE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__)] + sys.path)
    env.update(extra)
    return env


def test_thread_safe_under_asyncio_debug(impl):
    script = textwrap.dedent("""
        import logging, sys
        from concurrent.futures import ThreadPoolExecutor
        import a2wsgi
        from a2wsgi import ASGIMiddleware
        from test_asgi_threads import mixed_app, one_request

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        logging.getLogger("a2wsgi").setLevel(logging.CRITICAL)
        mw = ASGIMiddleware(mixed_app)
        with ThreadPoolExecutor(8) as pool:
            kinds = list(pool.map(lambda n: one_request(mw, n), range(200)))
        assert mw.loop.get_debug(), "asyncio debug mode is not on"
        mw.close()
        print("ok", len(kinds), a2wsgi.SPEEDUPS)
    """)
    out = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True, text=True,
                         timeout=120, env=_child_env(impl, PYTHONASYNCIODEBUG="1"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["ok", "200", str(impl.compiled)]
    for bad in ("Non-thread-safe", "non-thread-safe", "was never awaited", "Task was destroyed",
                "Unclosed", "unclosed", "Exception in callback", "Traceback"):
        assert bad not in out.stderr, out.stderr[-3000:]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("serve_in_parent", [False, True], ids=["preload", "parent-served-first"])
def test_fork_safety(impl, serve_in_parent):
    script = textwrap.dedent("""
        import os, sys, warnings
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with a thread running, on purpose
        from a2wsgi import ASGIMiddleware
        from test_asgi_support import make_environ, call
        from test_asgi_lifespan import lifespan_app

        events = []
        mw = ASGIMiddleware(lifespan_app(events))
        if SERVE_IN_PARENT:
            assert call(mw, make_environ("/")).status == "200 OK"
        children = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    for _ in range(3):
                        assert call(mw, make_environ("/")).body == b"['counter', 'db']"
                    mw.close()
                    assert events.count("lifespan.startup") == 1 + SERVE_IN_PARENT, events
                    assert events[-1] == "lifespan.shutdown", events
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        codes = [os.waitpid(pid, 0)[1] for pid in children]
        if SERVE_IN_PARENT:
            assert call(mw, make_environ("/")).status == "200 OK"
        print("children", codes)
    """).replace("SERVE_IN_PARENT", str(serve_in_parent))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env=_child_env(impl))
    assert out.returncode == 0, out.stderr[-3000:]
    assert "children [0, 0]" in out.stdout, out.stdout + out.stderr
