"""Load on one WSGIMiddleware: 500 concurrent requests on ``workers=10``, each response echoing a
unique token, in process and once more under ``PYTHONASYNCIODEBUG=1`` (issue 7, W->A)."""

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time

from test_wsgi_support import HANG_GUARD, Script, http_scope, mw, other_tasks, run, worker_threads  # noqa: F401

REQUESTS = 500
WORKERS = 10
KINDS = ("/echo", "/upload", "/stream", "/write")


def token_app(environ, start_response):
    """Echoes the request body: as a list (/echo and /upload, the latter a streamed body read
    in 1000-byte pieces), as 20 generator chunks with the token between them (/stream), or
    through ``write()`` and then a list (/write)."""
    path = environ["PATH_INFO"]
    stream = environ["wsgi.input"]
    if path == "/upload":
        parts = []
        while True:
            data = stream.read(1000)
            if not data:
                break
            parts.append(data)
        body = b"".join(parts)
    else:
        body = stream.read()
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/stream":
        return (b"%d:%s;" % (i, body) for i in range(20))
    if path == "/write":
        write(body[:5])
        return [body[5:]]
    return [body]


def expected(kind, token):
    if kind == "/stream":
        return b"".join(b"%d:%s;" % (i, token) for i in range(20))
    return token


def request(i):
    kind = KINDS[i % len(KINDS)]
    token = b"token-%04d-" % i
    if kind == "/upload":
        token += b"%06d" % i * 4000  # 28 KB in 7 messages: a streamed body
        pieces = [token[j:j + 4000] for j in range(0, len(token), 4000)]
        messages = [{"type": "http.request", "body": p, "more_body": True} for p in pieces]
        messages.append({"type": "http.request", "body": b"", "more_body": False})
    else:
        messages = [{"type": "http.request", "body": token, "more_body": False}]
    return kind, token, messages


async def run_load(middleware, count=REQUESTS):
    """``count`` requests started together; returns (the right responses, failures)."""

    async def one(i):
        kind, token, messages = request(i)
        script = Script(messages)
        await middleware(http_scope(path=kind, method="POST"), script.receive, script.send)
        return i, kind, token, script

    results = await asyncio.gather(*(one(i) for i in range(count)))
    good, failures = [], []
    for i, kind, token, script in results:
        if script.status == 200 and script.complete and script.body == expected(kind, token):
            good.append(i)
        else:
            failures.append((i, kind, script.sent[:2]))
    return good, failures


def test_500_concurrent_requests_on_10_workers(mw):
    middleware = mw(token_app, workers=WORKERS)
    peak = []

    async def go():
        watching = True

        async def watch():
            while watching:
                pool = middleware._pool  # only this middleware's workers: earlier tests' idle
                peak.append(pool.threads if pool is not None else 0)  # ones may still be alive
                await asyncio.sleep(0.001)

        watcher = asyncio.ensure_future(watch())
        good, failures = await run_load(middleware)
        watching = False
        await watcher
        assert other_tasks() == set()
        return good, failures

    others = threading.active_count() - len(worker_threads())
    good, failures = run(go(), timeout=HANG_GUARD * 6)
    assert failures == []
    assert sorted(good) == list(range(REQUESTS))
    pool = middleware._pool
    assert max(peak) <= WORKERS and pool.threads <= WORKERS
    assert threading.active_count() - len(worker_threads()) <= others
    # A worker marks itself idle just after its job returned, which may be after the loop sent
    # the last response: wait for it (a hang guard, not a timing assertion).
    deadline = time.monotonic() + HANG_GUARD
    while pool.threads - pool._idle and time.monotonic() < deadline:
        time.sleep(0.001)
    assert pool.threads - pool._idle == 0


def test_500_concurrent_requests_under_asyncio_debug(impl):
    script = textwrap.dedent("""
        import asyncio, logging, threading
        import a2wsgi
        from a2wsgi.wsgi import WSGIMiddleware
        from test_faults_wsgi_load import REQUESTS, WORKERS, run_load, token_app
        from test_wsgi_support import other_tasks

        logging.basicConfig(level=logging.DEBUG)

        async def main():
            assert asyncio.get_running_loop().get_debug(), "asyncio debug mode is not on"
            mw = WSGIMiddleware(token_app, workers=WORKERS)
            good, failures = await run_load(mw)
            assert failures == [], failures[:5]
            assert other_tasks() == set()
            await mw.shutdown()
            return len(good)

        print("ok", asyncio.run(main()), REQUESTS, a2wsgi.SPEEDUPS)
    """)
    env = dict(os.environ, PYTHONASYNCIODEBUG="1")
    env.pop("A2WSGI_PURE", None)
    if not impl.compiled:
        env["A2WSGI_PURE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(__file__)] + sys.path)
    out = subprocess.run([sys.executable, "-W", "default", "-X", "dev", "-c", script], capture_output=True,
                         text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    total = str(REQUESTS)
    assert out.stdout.split() == ["ok", total, total, str(impl.compiled)]
    for complaint in ("Non-thread-safe", "non-thread-safe", "thread other than", "was never awaited",
                      "Task was destroyed", "Exception in callback", "Traceback", "ResourceWarning"):
        assert complaint not in out.stderr, out.stderr[-3000:]
    slow = [line for line in out.stderr.splitlines() if line.startswith("WARNING:asyncio:Executing")
            and ("a2wsgi" in line or "wsgi.py" in line)]
    assert slow == [], slow[:5]
