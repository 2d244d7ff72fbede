"""In-process workloads: scripted ASGI servers for W->A, plain-thread WSGI servers for A->W.

Each implementation runs in its own worker process (see ``_worker.py``); ``IMPL`` there is one of
``ours`` (compiled or pure, decided by ``A2WSGI_PURE`` in that process), ``ours-inline``
(``ASGIMiddleware(app, inline=True)``, A->W only), ``upstream`` (a2wsgi 1.10.10 first on ``sys.path``),
``uvicorn``, ``asgiref``, ``floor``, ``hop``, ``protocol`` (W->A only) and ``native``. Every workload returns one figure and checks
every response it gets: a wrong status or body is an error, never a number.

The two floors of a small request:
- ``floor`` is one round trip through the standard library's futures: ``run_in_executor`` (W->A) or
  ``run_coroutine_threadsafe(...).result()`` (A->W); it pays for ``concurrent.futures`` machinery.
- ``hop`` is the bare hop a bridge cannot avoid, with the same echo app run on the other side: W->A,
  the loop puts a job on a ``queue.SimpleQueue``, a plain worker thread runs the WSGI app and resolves
  an asyncio future with ``call_soon_threadsafe``; A->W, a plain thread submits the ASGI app's
  coroutine function to the loop with ``call_soon_threadsafe`` (the task is created there) and waits
  on a ``threading.Lock`` used as a one-shot semaphore. What a bridge costs beyond ``hop`` is its own
  work (environ/scope, messages, streaming, bookkeeping).
- ``protocol`` (W->A small echoes only) is ``hop`` plus the protocol work that every W->A bridge
  does for this request, and nothing else: the loop receives the body message and sends
  ``http.response.start`` and the body; the worker builds the PEP 3333 environ from the scope with
  a ``wsgi.input`` over the body, and checks and encodes the status and headers given to
  ``start_response`` (a2wsgi's own hot functions, compiled unless ``A2WSGI_PURE=1``). No stream
  hand-off, no disconnect watch, no phases, no error path. What ours costs beyond ``protocol`` is
  the bridge's own machinery; what ``protocol`` costs beyond ``hop`` no bridge can skip.
"""

import asyncio
import concurrent.futures
import functools
import io
import queue
import threading
import time

import apps

W2A_IMPLS = ("ours", "upstream", "uvicorn", "asgiref", "floor", "hop", "protocol", "native")
# A throughput figure streams its body again and again until this much time has passed.
MIN_SECONDS = 0.25
A2W_IMPLS = ("ours", "ours-inline", "upstream", "floor", "hop", "native")


class NotAvailable(Exception):
    """This implementation does not exist (yet) or does not apply to this workload."""


class BridgeError(Exception):
    """A bridge answered wrongly: wrong status, wrong body, missing response."""


# ---------------------------------------------------------------- building the bridges

def wrap_wsgi_app(impl, wsgi_app, asgi_native, queue=10):
    """The ASGI app that serves ``wsgi_app`` through ``impl`` (or ``asgi_native`` for "native");
    ``queue`` is the bridges' ``send_queue_size`` (uvicorn's and asgiref's have none)."""
    if impl == "native":
        return asgi_native
    if impl in ("ours", "upstream"):
        import a2wsgi
        try:
            return a2wsgi.WSGIMiddleware(wsgi_app, workers=10, send_queue_size=queue)
        except NotImplementedError:
            raise NotAvailable("not implemented") from None
    if impl == "uvicorn":
        import warnings

        try:
            from uvicorn.middleware.wsgi import _WSGIMiddleware
        except ImportError as exc:
            raise NotAvailable("uvicorn not installed (%s)" % exc) from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return _WSGIMiddleware(wsgi_app, workers=10)
    if impl == "asgiref":
        try:
            from asgiref.wsgi import WsgiToAsgi
        except ImportError as exc:
            raise NotAvailable("asgiref not installed (%s)" % exc) from None
        return WsgiToAsgi(wsgi_app)
    raise NotAvailable("does not apply")


def wrap_asgi_app(impl, asgi_app, wsgi_native):
    """The WSGI app that serves ``asgi_app`` through ``impl`` (or ``wsgi_native`` for "native")."""
    if impl == "native":
        return wsgi_native
    if impl in ("ours", "upstream"):
        import a2wsgi
        try:
            return a2wsgi.ASGIMiddleware(asgi_app, wait_time=None, loop=None)
        except NotImplementedError:
            raise NotAvailable("not implemented") from None
    if impl == "ours-inline":
        import a2wsgi
        try:
            return a2wsgi.ASGIMiddleware(asgi_app, wait_time=None, inline=True)
        except NotImplementedError:
            raise NotAvailable("not implemented") from None
        except TypeError as exc:
            if "inline" in str(exc):
                raise NotAvailable("not implemented") from None
            raise
    raise NotAvailable("does not apply")


def single_threaded(impl, environ):
    """``environ`` as a server that serves one request at a time would give it (inline mode
    refuses ``wsgi.multithread``)."""
    if impl == "ours-inline":
        environ["wsgi.multithread"] = False
    return environ


# ---------------------------------------------------------------- W->A: a scripted ASGI server

class ScriptedExchange:
    """``receive``/``send`` for one HTTP request, as an ASGI server would offer them.

    The request body is ``pieces`` messages (``piece`` each, the last one ``last``). After it,
    ``receive`` waits until the response is complete and then says ``http.disconnect``.
    """

    __slots__ = ("left", "piece", "last", "status", "length", "parts", "complete", "waiter", "chunks", "held")

    def __init__(self, pieces, piece, last, keep_body):
        self.chunks = 0
        self.held = 0
        self.left = pieces
        self.piece = piece
        self.last = last
        self.status = None
        self.length = 0
        self.parts = [] if keep_body else None
        self.complete = False
        self.waiter = None

    async def receive(self):
        left = self.left
        if left > 0:
            self.left = left - 1
            if left == 1:
                return {"type": "http.request", "body": self.last, "more_body": False}
            return {"type": "http.request", "body": self.piece, "more_body": True}
        if not self.complete:
            if self.waiter is None:
                self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return {"type": "http.disconnect"}

    async def send(self, message):
        kind = message["type"]
        if kind == "http.response.body":
            if self.status is None or self.complete:
                raise BridgeError("http.response.body out of order")
            body = message.get("body", b"")
            if body:
                self.chunks += 1
                held = apps.PRODUCED[0] - self.chunks
                if held > self.held:
                    self.held = held
            self.length += len(body)
            if self.parts is not None:
                self.parts.append(body)
            if not message.get("more_body", False):
                self.complete = True
                if self.waiter is not None and not self.waiter.done():
                    self.waiter.set_result(None)
        elif kind == "http.response.start":
            if self.status is not None:
                raise BridgeError("http.response.start sent twice")
            self.status = message["status"]
        else:
            raise BridgeError("unexpected ASGI message %r" % kind)

    def check(self, length, body=None):
        if self.status != 200 or not self.complete:
            raise BridgeError("response status %r, complete %r" % (self.status, self.complete))
        if self.length != length:
            raise BridgeError("response body of %d bytes, expected %d" % (self.length, length))
        if body is not None and b"".join(self.parts) != body:
            raise BridgeError("response body %r, expected %r" % (b"".join(self.parts)[:80], body[:80]))


def _upload_headers(total):
    return [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/octet-stream"),
            (b"content-length", b"%d" % total)]


_GET_HEADERS = [(name, value) for name, value in apps.HEADERS_20 if name not in (b"content-type", b"content-length")]


class W2A:
    """The W->A workloads of one implementation, on one event loop."""

    def __init__(self, impl, loop):
        self.impl = impl
        self.loop = loop
        self.cache = {}
        self.pool = None
        self.jobs = None

    def _app(self, key, wsgi_app, asgi_native, queue=10):
        app = self.cache.get((key, queue))
        if app is None:
            app = self.cache[key, queue] = wrap_wsgi_app(self.impl, wsgi_app, asgi_native, queue)
        return app

    def _floor_pool(self):
        if self.pool is None:
            self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=10)
        return self.pool

    def _hop_jobs(self, worker=None):
        """The bare hop's job queue, served by 10 plain worker threads (as many as the bridges')
        running ``worker`` (``_hop_worker`` by default)."""
        if self.jobs is None:
            self.jobs = queue.SimpleQueue()
            for _ in range(10):
                threading.Thread(target=worker or _hop_worker, args=(self.jobs,), daemon=True,
                                 name="hop-worker").start()
        return self.jobs

    async def _hop_once(self, jobs, template):
        future = self.loop.create_future()
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(apps.ECHO_BODY)
        jobs.put((self.loop, future, apps.wsgi_echo, environ))
        body = await future
        if body != apps.ECHO_BODY:
            raise BridgeError("bare hop answered %r, expected %r" % (body[:80], apps.ECHO_BODY[:80]))

    async def _protocol_once(self, jobs, scope):
        exchange = ScriptedExchange(1, b"", apps.ECHO_BODY, True)
        message = await exchange.receive()
        future = self.loop.create_future()
        jobs.put((self.loop, future, apps.wsgi_echo, dict(scope), message["body"]))
        (status, headers), chunks = await future
        await exchange.send({"type": "http.response.start", "status": status, "headers": headers})
        await exchange.send({"type": "http.response.body", "body": b"".join(chunks), "more_body": False})
        exchange.check(len(apps.ECHO_BODY), apps.ECHO_BODY)

    async def _echo_once(self, app, scope):
        exchange = ScriptedExchange(1, b"", apps.ECHO_BODY, True)
        await app(dict(scope), exchange.receive, exchange.send)
        exchange.check(len(apps.ECHO_BODY), apps.ECHO_BODY)

    async def _floor_once(self, pool):
        body = await self.loop.run_in_executor(pool, _identity, apps.ECHO_BODY)
        if body is not apps.ECHO_BODY:
            raise BridgeError("floor round trip lost the body")

    def _echo_runner(self):
        if self.impl == "floor":
            pool = self._floor_pool()
            return lambda: self._floor_once(pool)
        if self.impl == "hop":
            jobs = self._hop_jobs()
            template = apps.wsgi_environ(content_length=len(apps.ECHO_BODY))
            return lambda: self._hop_once(jobs, template)
        if self.impl == "protocol":
            jobs = self._hop_jobs(_protocol_worker)
            scope = apps.http_scope()
            return lambda: self._protocol_once(jobs, scope)
        app = self._app("echo", apps.wsgi_echo, apps.asgi_echo)
        scope = apps.http_scope()
        return lambda: self._echo_once(app, scope)

    def echo_requests(self, n):
        """``n`` small POST echoes, one at a time, untimed (a profiler's or callgrind's loop)."""
        once = self._echo_runner()

        async def run(count):
            for _ in range(count):
                await once()

        self.loop.run_until_complete(run(n))

    def echo_seq(self, n):
        """Small POST echo, one request at a time: microseconds per request."""
        self.echo_requests(max(5, n // 10))
        start = time.perf_counter()
        self.echo_requests(n)
        return (time.perf_counter() - start) / n * 1e6, "us/req"

    def echo_concurrent(self, n, concurrency=100):
        """Small POST echo, ``concurrency`` requests in flight: requests per second."""
        once = self._echo_runner()
        per_task = max(1, n // concurrency)

        async def task(count):
            for _ in range(count):
                await once()

        async def run(count):
            await asyncio.gather(*[task(count) for _ in range(concurrency)])

        self.loop.run_until_complete(run(max(1, per_task // 10)))
        start = time.perf_counter()
        self.loop.run_until_complete(run(per_task))
        return per_task * concurrency / (time.perf_counter() - start), "req/s"

    def download(self, total, warmup=None, before=None, queue=10):
        """``total`` bytes in 64 KiB chunks from the app to the client: MiB/s.

        ``warmup`` bytes are streamed first (default: ``total``), then ``before()`` is called.
        ``queue`` is the bridge's ``send_queue_size``.
        """
        if self.impl in ("floor", "hop", "protocol"):
            raise NotAvailable("does not apply")
        app = self._app("download", apps.wsgi_download, apps.asgi_download, queue)

        async def once(size):
            scope = apps.http_scope(method="GET", path="/app/download", headers=_GET_HEADERS,
                                    query_string=b"size=%d" % size)
            exchange = ScriptedExchange(1, b"", b"", False)
            apps.PRODUCED[0] = 0
            await app(scope, exchange.receive, exchange.send)
            exchange.check(size)
            return exchange.held

        self.loop.run_until_complete(once(total if warmup is None else warmup))
        if before is not None:
            before()
        if before is not None:
            start = time.perf_counter()
            held = self.loop.run_until_complete(once(total))
            return total / apps.MiB / (time.perf_counter() - start), "MiB/s", {"held_max": held}
        held, count, elapsed = 0, 0, 0.0
        while elapsed < MIN_SECONDS:
            start = time.perf_counter()
            held = max(held, self.loop.run_until_complete(once(total)))
            elapsed += time.perf_counter() - start
            count += 1
        return total * count / apps.MiB / elapsed, "MiB/s", {"held_max": held}

    def upload(self, total, warmup=None, before=None):
        """``total`` bytes in 64 KiB messages from the client to the app: MiB/s."""
        if self.impl in ("floor", "hop", "protocol"):
            raise NotAvailable("does not apply")
        app = self._app("upload", apps.wsgi_upload, apps.asgi_upload)

        async def once(size):
            scope = apps.http_scope(method="POST", path="/app/upload", headers=_upload_headers(size))
            pieces, rest = divmod(size, apps.CHUNK)
            expected = b"%d" % size
            exchange = ScriptedExchange(pieces + 1, apps.PIECE, apps.PIECE[:rest], True)
            await app(scope, exchange.receive, exchange.send)
            exchange.check(len(expected), expected)

        self.loop.run_until_complete(once(total if warmup is None else warmup))
        if before is not None:
            before()
        count, elapsed = 0, 0.0
        while elapsed < MIN_SECONDS or count == 0:
            start = time.perf_counter()
            self.loop.run_until_complete(once(total))
            elapsed += time.perf_counter() - start
            count += 1
            if before is not None:
                break
        return total * count / apps.MiB / elapsed, "MiB/s"


def _identity(value):
    return value


def _hop_worker(jobs):
    """A bare-hop worker: run the WSGI app of each job and resolve the job's asyncio future."""
    while True:
        loop, future, app, environ = jobs.get()
        try:
            collector = Collector()
            result = app(environ, collector.start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if collector.status != "200 OK":
                raise BridgeError("bare hop: the app answered %r" % (collector.status,))
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, raised there
            loop.call_soon_threadsafe(_fail, future, exc)
        else:
            loop.call_soon_threadsafe(_resolve, future, body)


def _protocol_worker(jobs):
    """A ``protocol`` worker: the bare hop's, with the environ built from the scope and the
    response start checked and encoded, by a2wsgi's hot functions."""
    from a2wsgi._hot import wsgi_hot

    build_environ, body_of = wsgi_hot.build_environ, wsgi_hot.Body
    parse_status, encode_response_headers = wsgi_hot.parse_status, wsgi_hot.encode_response_headers
    while True:
        loop, future, app, scope, body = jobs.get()
        try:
            start = []

            def start_response(status, headers, exc_info=None):
                start.append((parse_status(status), encode_response_headers(headers)))

            environ = build_environ(scope, body_of(functools.partial(next, iter((body,)), b"")), "")
            result = app(environ, start_response)
            chunks = list(result)
            close = getattr(result, "close", None)
            if close is not None:
                close()
            value = (start[0], chunks)
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, raised there
            loop.call_soon_threadsafe(_fail, future, exc)
        else:
            loop.call_soon_threadsafe(_resolve, future, value)


def _resolve(future, value):
    if not future.done():
        future.set_result(value)


def _fail(future, exc):
    if not future.done():
        future.set_exception(exc)


async def _async_identity(value):
    return value


# ---------------------------------------------------------------- A->W: plain-thread WSGI server

class Collector:
    """``start_response`` for one request, and the check of what came back."""

    __slots__ = ("status", "headers")

    def __init__(self):
        self.status = None
        self.headers = None

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.status is not None:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise BridgeError("start_response called twice without exc_info")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data):
        raise BridgeError("write() is not expected from these apps")


def wsgi_call(app, environ, keep_body, held=None):
    """Call a WSGI app as a server would; ``held[0]`` gets the most body chunks that the ASGI app
    had sent but the server had not yet been given (download apps count what they send)."""
    collector = Collector()
    result = app(environ, collector.start_response)
    length = 0
    chunks = 0
    parts = [] if keep_body else None
    produced = apps.PRODUCED
    try:
        for chunk in result:
            length += len(chunk)
            if parts is not None:
                parts.append(chunk)
            if held is not None and chunk:
                chunks += 1
                if produced[0] - chunks > held[0]:
                    held[0] = produced[0] - chunks
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if collector.status is None or not collector.status.startswith("200 "):
        raise BridgeError("response status %r" % (collector.status,))
    return length, (b"".join(parts) if parts is not None else None)


def _in_threads(count, target):
    """Run ``target()`` on ``count`` plain threads at once; re-raise the first failure."""
    errors = []
    barrier = threading.Barrier(count + 1)

    def body():
        try:
            barrier.wait()
            target()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            errors.append(exc)

    threads = [threading.Thread(target=body, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def _repeat_in_thread(once, repeat):
    """Seconds per call of ``once()`` on a plain thread: called until MIN_SECONDS have passed, or
    once if not ``repeat``."""
    spent = []

    def body():
        count, elapsed = 0, 0.0
        while count == 0 or (repeat and elapsed < MIN_SECONDS):
            start = time.perf_counter()
            once()
            elapsed += time.perf_counter() - start
            count += 1
        spent.append(elapsed / count)

    _in_threads(1, body)
    return spent[0]


class A2W:
    """The A->W workloads of one implementation, called from plain threads."""

    def __init__(self, impl):
        self.impl = impl
        self.cache = {}
        self.loop = None

    def _app(self, key, asgi_app, wsgi_native):
        app = self.cache.get(key)
        if app is None:
            app = self.cache[key] = wrap_asgi_app(self.impl, asgi_app, wsgi_native)
        return app

    def _floor_loop(self):
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, daemon=True, name="floor-loop").start()
        return self.loop

    def _echo_runner(self):
        body = apps.ECHO_BODY
        if self.impl == "hop":
            loop = self._floor_loop()
            template = apps.http_scope()

            def hop_once():
                call = _HopCall(loop, apps.asgi_echo, dict(template), body)
                if call.run() != body:
                    raise BridgeError("bare hop lost the body")
            return hop_once
        if self.impl == "floor":
            loop = self._floor_loop()

            def floor_once():
                if asyncio.run_coroutine_threadsafe(_async_identity(body), loop).result() is not body:
                    raise BridgeError("floor round trip lost the body")
            return floor_once
        app = self._app("echo", apps.asgi_echo, apps.wsgi_echo)
        template = single_threaded(self.impl, apps.wsgi_environ(content_length=len(body)))

        def once():
            environ = dict(template)
            environ["wsgi.input"] = io.BytesIO(body)
            length, got = wsgi_call(app, environ, True)
            if got != body:
                raise BridgeError("response body %r, expected %r" % (got[:80], body[:80]))
        return once

    def echo_requests(self, n):
        """``n`` small POST echoes from one plain thread, untimed (a profiler's or callgrind's loop)."""
        once = self._echo_runner()

        def run():
            for _ in range(n):
                once()

        return _in_threads(1, run)

    def echo_seq(self, n):
        """Small POST echo from one thread: microseconds per request."""
        self.echo_requests(max(5, n // 10))
        return self.echo_requests(n) / n * 1e6, "us/req"

    def echo_threads(self, n, threads=8):
        """Small POST echo from ``threads`` threads at once: requests per second."""
        if self.impl == "ours-inline":
            raise NotAvailable("does not apply: inline mode serves one thread")
        once = self._echo_runner()
        per_thread = max(1, n // threads)

        def run(count):
            for _ in range(count):
                once()

        _in_threads(threads, lambda: run(max(1, per_thread // 10)))
        return per_thread * threads / _in_threads(threads, lambda: run(per_thread)), "req/s"

    def download(self, total, warmup=None, before=None, bound=None):
        """``total`` bytes in 64 KiB chunks from the app to the WSGI server: MiB/s.

        ``bound``: run at most that many chunks (and 64 KiB each) ahead of the server instead of
        ASGIMiddleware's HELD_CHUNKS/HELD_BYTES (16, 1 MiB; issue 13, rule 7). A build whose
        response hand-off counts a chunk until it is taken rather than yielded (commit 9111e57,
        ``before``: 16 queued, and up to 16 more taken) already runs up to 31 ahead, and keeps
        its own."""
        if self.impl in ("floor", "hop", "protocol"):
            raise NotAvailable("does not apply")
        if bound is None:
            return self._download(total, warmup, before)
        from a2wsgi import asgi
        if not hasattr(asgi, "Handoff"):
            return self._download(total, warmup, before)
        limits = asgi.HELD_CHUNKS, asgi.HELD_BYTES
        asgi.HELD_CHUNKS, asgi.HELD_BYTES = bound, bound * apps.CHUNK
        try:
            return self._download(total, warmup, before)
        finally:
            asgi.HELD_CHUNKS, asgi.HELD_BYTES = limits

    def _download(self, total, warmup, before):
        app = self._app("download", apps.asgi_download, apps.wsgi_download)

        held = [0]

        def once(size):
            environ = single_threaded(self.impl, apps.wsgi_environ(
                method="GET", path="/download", headers=_GET_HEADERS, query_string="size=%d" % size))
            apps.PRODUCED[0] = 0
            length, _ = wsgi_call(app, environ, False, held)
            if length != size:
                raise BridgeError("response body of %d bytes, expected %d" % (length, size))

        _in_threads(1, lambda: once(total if warmup is None else warmup))
        if before is not None:
            before()
        held[0] = 0
        return total / apps.MiB / _repeat_in_thread(lambda: once(total), before is None), "MiB/s", {
            "held_max": held[0]}

    def upload(self, total, warmup=None, before=None):
        """``total`` bytes read by the bridge from ``wsgi.input`` and sent to the app: MiB/s."""
        if self.impl in ("floor", "hop", "protocol"):
            raise NotAvailable("does not apply")
        app = self._app("upload", apps.asgi_upload, apps.wsgi_upload)

        def once(size):
            environ = single_threaded(self.impl, apps.wsgi_environ(
                method="POST", path="/upload", headers=_upload_headers(size)[:2], body=apps.VirtualInput(size),
                content_length=size))
            _, got = wsgi_call(app, environ, True)
            if got != b"%d" % size:
                raise BridgeError("upload app saw %r bytes, expected %d" % (got, size))

        _in_threads(1, lambda: once(total if warmup is None else warmup))
        if before is not None:
            before()
        return total / apps.MiB / _repeat_in_thread(lambda: once(total), before is None), "MiB/s"


class _HopCall:
    """One A->W bare hop: the calling thread has the loop create the app's task with
    ``call_soon_threadsafe`` and waits on a pre-acquired lock that the task's end releases."""

    __slots__ = ("loop", "app", "scope", "body", "done", "parts", "status", "task")

    def __init__(self, loop, app, scope, body):
        self.loop, self.app, self.scope, self.body = loop, app, scope, body
        self.done = threading.Lock()
        self.done.acquire()
        self.parts = []
        self.status = None
        self.task = None

    def run(self):
        self.loop.call_soon_threadsafe(self._start)
        self.done.acquire()
        task = self.task
        if task.cancelled() or task.exception() is not None:
            raise BridgeError("bare hop: the app failed: %r" % (None if task.cancelled() else task.exception()))
        if self.status != 200:
            raise BridgeError("bare hop: status %r" % (self.status,))
        return b"".join(self.parts)

    def _start(self):
        self.task = self.loop.create_task(self.app(self.scope, self.receive, self.send))
        self.task.add_done_callback(self._ended)

    def _ended(self, task):
        self.done.release()

    async def receive(self):
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message):
        if message["type"] == "http.response.start":
            self.status = message["status"]
        else:
            self.parts.append(message.get("body", b""))


# ---------------------------------------------------------------- environ / scope building

RESPONSE_HEADERS_STR = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "1234"),
                        ("Cache-Control", "no-cache"), ("Set-Cookie", "a=b; Path=/; HttpOnly"),
                        ("X-Frame-Options", "DENY"), ("Vary", "Accept-Encoding")]
RESPONSE_HEADERS_BYTES = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in RESPONSE_HEADERS_STR]

# Header translation both ways and the status line, ours only (upstream does them inline):
# name -> (hot module, args).
HEADER_FUNCTIONS = {
    "translate_request_headers": ("wsgi_hot", lambda: (apps.HEADERS_20,)),
    "build_headers": ("asgi_hot", lambda: (apps.wsgi_environ(content_length=len(apps.ECHO_BODY)),)),
    "encode_response_headers": ("wsgi_hot", lambda: (RESPONSE_HEADERS_STR,)),
    "decode_response_headers": ("asgi_hot", lambda: (RESPONSE_HEADERS_BYTES,)),
    "parse_status": ("wsgi_hot", lambda: ("200 OK",)),
    "status_line": ("asgi_hot", lambda: (404,)),
}


def hot_function(impl, name):
    """``(callable, args)`` for one call of a hot path with 20 headers, or NotAvailable."""
    if impl in ("ours", "upstream"):
        if name == "build_environ":
            import a2wsgi.wsgi as mod
            func = getattr(mod, "build_environ", None)
            if func is None:
                raise NotAvailable("not implemented")
            return func, (apps.http_scope(), io.BytesIO(b""))
        if name == "build_scope":
            import a2wsgi.asgi as mod
            func = getattr(mod, "build_scope", None)
            if func is None:
                raise NotAvailable("not implemented")
            return func, (apps.wsgi_environ(content_length=len(apps.ECHO_BODY)),)
        if impl == "ours" and name in HEADER_FUNCTIONS:
            from a2wsgi import _hot
            side, args = HEADER_FUNCTIONS[name]
            func = getattr(getattr(_hot, side), name, None)
            if func is None:
                raise NotAvailable("not implemented")
            return func, args()
    if impl == "uvicorn" and name == "build_environ":
        try:
            from uvicorn.middleware.wsgi import build_environ
        except ImportError as exc:
            raise NotAvailable("uvicorn not installed (%s)" % exc) from None
        message = {"type": "http.request", "body": apps.ECHO_BODY, "more_body": False}
        return build_environ, (apps.http_scope(), message, io.BytesIO(b""))
    raise NotAvailable("does not apply")


def time_calls(func, args, n):
    """Microseconds per call of ``func(*args)``, over ``n`` calls after a short warm-up."""
    for _ in range(max(10, n // 20)):
        func(*args)
    start = time.perf_counter()
    for _ in range(n):
        func(*args)
    return (time.perf_counter() - start) / n * 1e6, "us/call"
