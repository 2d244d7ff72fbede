"""Load on one ASGIMiddleware: 64 WSGI threads at once, each response echoing a unique token, in
process and once more under ``PYTHONASYNCIODEBUG=1`` (issue 7, A->W)."""

import asyncio
import os
import subprocess
import sys
import textwrap
import threading

from test_asgi_support import (threads_only, HANG_GUARD, call, make_environ, middlewares,  # noqa: F401
                               pending_tasks, wait_until)

THREADS = 64
PER_THREAD = 3
KINDS = ("/echo", "/upload", "/stream")


async def token_app(scope, receive, send):
    """Echoes the request body: at once (/echo), in three chunks (/upload, a streamed body), or
    as 20 chunks with the token between them (/stream)."""
    if scope["type"] != "http":
        return
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        parts.append(message["body"])
        if not message.get("more_body"):
            break
    body = b"".join(parts)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    if scope["path"] == "/echo":
        await send({"type": "http.response.body", "body": body})
    elif scope["path"] == "/upload":
        third = len(body) // 3
        for piece in (body[:third], body[third:2 * third]):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": body[2 * third:]})
    else:
        for i in range(20):
            await send({"type": "http.response.body", "body": b"%d:%s;" % (i, body), "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def expected(kind, token):
    if kind == "/stream":
        return b"".join(b"%d:%s;" % (i, token) for i in range(20))
    return token


def run_load(mw, threads=THREADS, per_thread=PER_THREAD):
    """Each of ``threads`` WSGI threads, released together, sends ``per_thread`` requests with its
    own tokens. Returns (requests with the right body, failures)."""
    barrier = threading.Barrier(threads)
    good = []
    failures = []

    def worker(t):
        try:
            barrier.wait(HANG_GUARD)
            for i in range(per_thread):
                kind = KINDS[(t + i) % len(KINDS)]
                token = b"token-%d-%d-" % (t, i)
                if kind == "/upload":
                    token += b"%06d" % t * 12_000  # 72 KB: streamed to the app in pieces
                response = call(mw, make_environ(kind, "POST", token))
                if response.status == "200 OK" and response.body == expected(kind, token):
                    good.append((t, i))
                else:
                    failures.append((t, i, response.status, response.body[:80], response.error))
        except BaseException as exc:  # reported by the caller
            failures.append((t, None, repr(exc)))

    workers = [threading.Thread(target=worker, args=(t,), name="wsgi-%d" % t) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(HANG_GUARD * 3)
    assert not any(w.is_alive() for w in workers), "a WSGI thread hangs"
    return good, failures


def test_64_wsgi_threads_on_one_middleware(middlewares, asgi_mode):
    threads_only(asgi_mode)
    mw = middlewares(token_app)
    assert call(mw, make_environ("/echo", "POST", b"warm")).body == b"warm"
    threads = threading.active_count()
    good, failures = run_load(mw)
    assert failures == []
    assert sorted(good) == [(t, i) for t in range(THREADS) for i in range(PER_THREAD)]
    assert wait_until(lambda: threading.active_count() <= threads), threading.enumerate()
    assert pending_tasks(mw) == []


def test_64_wsgi_threads_under_asyncio_debug(impl):
    script = textwrap.dedent("""
        import a2wsgi
        from a2wsgi import ASGIMiddleware
        from test_faults_asgi_load import run_load, token_app, THREADS, PER_THREAD
        from test_asgi_support import pending_tasks

        mw = ASGIMiddleware(token_app)
        good, failures = run_load(mw)
        assert failures == [], failures[:5]
        assert mw.loop.get_debug(), "asyncio debug mode is not on"
        assert pending_tasks(mw) == []
        mw.close(timeout=20)
        print("ok", len(good), THREADS * PER_THREAD, a2wsgi.SPEEDUPS)
    """)
    env = dict(os.environ, PYTHONASYNCIODEBUG="1")
    env.pop("A2WSGI_PURE", None)
    if not impl.compiled:
        env["A2WSGI_PURE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__)] + sys.path)
    out = subprocess.run([sys.executable, "-W", "default", "-c", script], capture_output=True, text=True,
                         timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    total = str(THREADS * PER_THREAD)
    assert out.stdout.split() == ["ok", total, total, str(impl.compiled)]
    for complaint in ("Non-thread-safe", "non-thread-safe", "thread other than", "was never awaited",
                      "Task was destroyed", "Exception in callback", "Traceback"):
        assert complaint not in out.stderr, out.stderr[-3000:]
