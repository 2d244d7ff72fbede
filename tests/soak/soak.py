"""Soak: many requests through each direction; threads, tasks, open fds and RSS must stay flat.

    python tests/soak/soak.py [--requests 50000] [--direction wsgi|asgi|both]

The requests mix the paths that could leak: small echoes, streamed responses, streamed uploads,
client disconnects mid-stream and app errors. Resources are sampled after each tenth of the run;
the growth between the sample after the first fifth (10,000 of 50,000) and the last must be at most
2 MiB of RSS, 0 threads, 0 pending asyncio tasks and 0 file descriptors. Exits 1 if not.
"""

import argparse
import asyncio
import gc
import io
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import a2wsgi
from a2wsgi import ASGIMiddleware, WSGIMiddleware

RSS_LIMIT = 2 * 1024 * 1024


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def fds():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


# --- W->A: a WSGI app served through WSGIMiddleware, driven by a scripted ASGI server ----------

def wsgi_app(environ, start_response):
    kind = environ["PATH_INFO"]
    if kind == "/error":
        raise RuntimeError("soak: app error")
    body = environ["wsgi.input"].read()
    if kind == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"x" * 1024 for _ in range(20))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def wsgi_one(app, n):
    kind = ("/echo", "/stream", "/upload", "/disconnect", "/error")[n % 5]
    token = b"token-%d" % n
    parts = [token] if kind != "/upload" else [token, b"-a" * 100, b"-b" * 100]
    queue = list(parts)
    sent = []
    path = "/stream" if kind == "/disconnect" else kind

    async def receive():
        if queue:
            chunk = queue.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(queue)}
        await asyncio.sleep(3600)  # the client stays connected until cancelled
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if kind == "/disconnect" and message["type"] == "http.response.body" and len(sent) > 3:
            raise OSError("soak: client went away")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"soak")], "client": ("127.0.0.1", 1000 + n % 5000),
             "server": ("127.0.0.1", 80)}
    try:
        await app(scope, receive, send)
    except (OSError, RuntimeError):
        if kind not in ("/disconnect", "/error"):
            raise
    if kind in ("/echo", "/upload"):
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        if body != b"".join(parts):
            raise AssertionError("W->A %s: wrong body for request %d" % (kind, n))


async def wsgi_soak(total, concurrency, samples):
    app = WSGIMiddleware(wsgi_app, workers=10)
    lifespan_in = asyncio.Queue()
    lifespan_out = asyncio.Queue()
    lifespan = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan_in.get, lifespan_out.put))
    await lifespan_in.put({"type": "lifespan.startup"})
    assert (await asyncio.wait_for(lifespan_out.get(), 30))["type"] == "lifespan.startup.complete"
    step = total // 10
    done = 0
    while done < total:
        batch = min(step, total - done)
        for start in range(done, done + batch, concurrency):
            await asyncio.gather(*(wsgi_one(app, n) for n in range(start, min(start + concurrency, done + batch))))
        done += batch
        gc.collect()
        samples.append(_sample(done, [t for t in asyncio.all_tasks() if t is not lifespan]))
    await lifespan_in.put({"type": "lifespan.shutdown"})
    assert (await asyncio.wait_for(lifespan_out.get(), 30))["type"] == "lifespan.shutdown.complete"
    await asyncio.wait_for(lifespan, 30)


# --- A->W: an ASGI app served through ASGIMiddleware, driven by WSGI server threads -------------

async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    kind = scope["path"]
    if kind == "/error":
        raise RuntimeError("soak: app error")
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    if kind in ("/stream", "/disconnect"):
        for _ in range(20):
            await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.body", "body": body})


def asgi_one(app, n):
    kind = ("/echo", "/stream", "/upload", "/disconnect", "/error")[n % 5]
    token = b"token-%d" % n + (b"-u" * 40000 if kind == "/upload" else b"")
    environ = {"REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": kind, "QUERY_STRING": "",
               "SERVER_NAME": "soak", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
               "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "1000", "CONTENT_LENGTH": str(len(token)),
               "HTTP_HOST": "soak", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(token), "wsgi.errors": io.StringIO(), "wsgi.multithread": True,
               "wsgi.multiprocess": False, "wsgi.run_once": False}
    status = []

    def start_response(s, headers, exc_info=None):
        status.append(s)

    result = app(environ, start_response)
    chunks = []
    try:
        for chunk in result:
            chunks.append(chunk)
            if kind == "/disconnect" and len(chunks) >= 3:
                break
    except RuntimeError:
        if kind != "/error":
            raise
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if kind in ("/echo", "/upload") and b"".join(chunks) != token:
        raise AssertionError("A->W %s: wrong body for request %d" % (kind, n))
    if kind == "/error" and not (status and status[-1].startswith("500")):
        raise AssertionError("A->W /error: status %r for request %d" % (status, n))


def asgi_soak(total, threads, samples):
    app = ASGIMiddleware(asgi_app)
    step = total // 10
    done = 0
    with ThreadPoolExecutor(threads) as pool:
        while done < total:
            batch = min(step, total - done)
            for _ in pool.map(lambda n: asgi_one(app, n), range(done, done + batch)):
                pass
            done += batch
            gc.collect()
            samples.append(_sample(done, (), loop_tasks(app.loop)))
    close = getattr(app, "close", None)
    if close is not None:
        close()


def loop_tasks(loop):
    """The tasks alive on ``loop`` (running in another thread), counted on that loop."""

    async def count():
        return len(asyncio.all_tasks()) - 1

    return asyncio.run_coroutine_threadsafe(count(), loop).result(30)


def _sample(done, tasks, task_count=None):
    if task_count is None:
        task_count = len([t for t in tasks if t is not asyncio.current_task()])
    return {"requests": done, "rss": rss(), "threads": threading.active_count(),
            "tasks": task_count, "fds": fds()}


def report(name, samples, first):
    print("%s (%s):" % (name, "compiled" if a2wsgi.SPEEDUPS else "pure"))
    print("  %10s %10s %8s %6s %5s" % ("requests", "RSS KiB", "threads", "tasks", "fds"))
    for s in samples:
        print("  %10d %10d %8d %6d %5d" % (s["requests"], s["rss"] // 1024, s["threads"], s["tasks"], s["fds"]))
    base = next(s for s in samples if s["requests"] >= first)
    last = samples[-1]
    problems = []
    if last["rss"] - base["rss"] > RSS_LIMIT:
        problems.append("RSS grew by %d KiB" % ((last["rss"] - base["rss"]) // 1024))
    for key in ("threads", "tasks", "fds"):
        if last[key] > base[key]:
            problems.append("%s grew from %d to %d" % (key, base[key], last[key]))
    print("  growth after request %d: %s" % (base["requests"], "; ".join(problems) or "none beyond limits"))
    return not problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50000)
    parser.add_argument("--direction", choices=("wsgi", "asgi", "both"), default="both")
    args = parser.parse_args(argv)
    logging.getLogger("a2wsgi").setLevel(logging.CRITICAL)  # the errors are the point; keep output short
    first = args.requests // 5
    ok = True
    if args.direction in ("wsgi", "both"):
        samples = []
        asyncio.run(wsgi_soak(args.requests, 50, samples))
        ok &= report("W->A WSGIMiddleware, %d requests" % args.requests, samples, first)
    if args.direction in ("asgi", "both"):
        samples = []
        asgi_soak(args.requests, 8, samples)
        ok &= report("A->W ASGIMiddleware, %d requests" % args.requests, samples, first)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
