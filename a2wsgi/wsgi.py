"""WSGIMiddleware: a WSGI application served by an ASGI server (PEP 3333 on the ASGI HTTP spec).

The app runs on a worker thread; everything ASGI happens on the event loop. A request costs one
hop to a worker and one wake-up back when its body arrives in one message and the app returns a
list or tuple: the first body message is taken on the loop before dispatch, the worker collects
``start_response`` and the body, and the loop sends it all once the worker is done. Streamed
responses (iterators, ``write()``) move through a buffer of at most ``send_queue_size`` chunks,
with one loop wake-up per batch; streamed request bodies are read ahead on the loop by a bounded
amount, and the worker waits for the loop only when nothing is buffered.
"""

import asyncio
import collections
import contextvars
import functools
import logging
import os
import queue
import threading
import weakref

from ._apps import require_asyncio
from ._apps import check_wsgi_app, wrong_call_error
from ._hot import wsgi_hot

translate_request_headers = wsgi_hot.translate_request_headers
build_environ = wsgi_hot.build_environ
Body = wsgi_hot.Body
encode_response_headers = wsgi_hot.encode_response_headers
parse_status = wsgi_hot.parse_status

__all__ = ("WSGIMiddleware", "Body", "build_environ", "FileWrapper", "ClientDisconnected")

logger = logging.getLogger("a2wsgi")

#: More request header pairs than this are answered with 431 without running the app.
MAX_REQUEST_HEADERS = 1000
#: Request body bytes read ahead of the app on the loop, per request.
READ_AHEAD_BYTES = 512 * 1024
#: Request body bytes read ahead once the response is streaming: an app that streams without
#: reading the body still has ``receive()`` asked, so a disconnect is seen on servers whose
#: ``send()`` does nothing once the client is gone (uvicorn). Nothing read is ever discarded.
STREAMING_READ_AHEAD_BYTES = 2 * READ_AHEAD_BYTES
#: Seconds an idle worker thread waits for a request before it exits.
IDLE_WORKER_SECONDS = 60.0

_JOIN_LIMIT = 64 * 1024
# Yield to the loop after this many sends in a row. Some servers' send() never suspends while the
# transport is not paused; yielding lets other connections run and a lost connection be noticed
# (asyncio logs "socket.send() raised exception." from the fifth write after a loss on).
_SENDS_PER_YIELD = 4
_END = {"type": "http.response.body", "body": b"", "more_body": False}


class ClientDisconnected(OSError):
    """The client went away: raised by ``wsgi.input`` reads when the upload was cut short."""


class FileWrapper:
    """``wsgi.file_wrapper`` (PEP 3333, "Optional Platform-Specific File Handling").

    Iterates ``filelike`` in blocks of ``block_size`` bytes and closes it on ``close()``. When the
    ASGI server offers ``http.response.pathsend`` and ``filelike`` is a regular file at its start,
    the middleware sends its path instead of reading it through Python.
    """

    __slots__ = ("filelike", "block_size")

    def __init__(self, filelike, block_size=64 * 1024):
        self.filelike = filelike
        self.block_size = block_size

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.block_size)
        if data:
            return data
        raise StopIteration

    def close(self):
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def _file_path(wrapper):
    """The absolute path of a FileWrapper's file, if it is a regular file read from its start."""
    filelike = wrapper.filelike
    name = getattr(filelike, "name", None)
    if type(name) is not str:
        return None
    try:
        if filelike.tell() != 0:
            return None
        opened = os.fstat(filelike.fileno())
        on_disk = os.stat(name)
    except (AttributeError, OSError, ValueError):
        return None
    if not os.path.isfile(name) or (opened.st_dev, opened.st_ino) != (on_disk.st_dev, on_disk.st_ino):
        return None
    return os.path.abspath(name)


class _Workers:
    """At most ``limit`` daemon threads running jobs from a ``SimpleQueue``, started on demand.

    A job is ``(context, function)``; it runs as ``context.run(function)``. ``_idle`` counts
    threads waiting for a job that no submitted job has claimed yet, ``_backlog`` the jobs queued
    while every thread was busy. A thread idle for ``IDLE_WORKER_SECONDS`` exits; ``close()`` stops
    them all, each after its current job.
    """

    def __init__(self, limit):
        if limit < 1:
            raise ValueError("workers must be at least 1, got %r" % (limit,))
        self._limit = limit
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0
        self._backlog = 0
        self._closing = False
        self._on_empty = None
        self._started = set()

    @property
    def threads(self):
        return self._threads

    def submit(self, job):
        with self._lock:
            if self._closing:
                raise RuntimeError("WSGIMiddleware workers were shut down")
            if self._idle:
                self._idle -= 1
                self._jobs.put(job)
                return
            if self._threads >= self._limit:
                self._backlog += 1
                self._jobs.put(job)
                return
            self._threads += 1
            thread = threading.Thread(target=self._run, args=(job,), name="a2wsgi-worker", daemon=True)
            self._started.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._threads -= 1
                self._started.discard(thread)
            raise

    def _run(self, job):
        jobs = self._jobs
        lock = self._lock
        while job is not None:
            context, function = job
            context.run(function)
            job = context = function = None
            with lock:
                if self._backlog:
                    self._backlog -= 1
                    waiting = False
                else:
                    self._idle += 1
                    waiting = True
            if not waiting:
                job = jobs.get()
                continue
            try:
                job = jobs.get(timeout=IDLE_WORKER_SECONDS)
            except queue.Empty:
                with lock:
                    leave = self._idle > 0
                    if leave:
                        self._idle -= 1
                if leave:
                    break
                job = jobs.get()
        with lock:
            self._threads -= 1
            self._started.discard(threading.current_thread())
            on_empty = self._on_empty if self._threads == 0 else None
        if on_empty is not None:
            on_empty()

    def close(self, on_empty=None):
        """Stop every thread after its current job; call ``on_empty()`` when the last one is
        done, and return the threads, for a ``join()`` that then returns at once."""
        with self._lock:
            self._closing = True
            self._on_empty = on_empty
            for _ in range(self._threads):
                self._jobs.put(None)
            empty = self._threads == 0
            threads = list(self._started)
        if empty and on_empty is not None:
            on_empty()
        return threads


def _call_soon(loop, callback, *args):
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:
        pass


def _resolve(future):
    if not future.done():
        future.set_result(None)


class _Exchange:
    """One HTTP request: the worker thread runs the app, the event loop talks ASGI.

    The fields under ``lock`` are shared: ``out`` (chunks handed to the loop), ``held`` (chunks
    handed and not yet sent), ``wake_pending`` (a loop wake-up is scheduled or the loop will look
    again), ``finished`` (the worker is done), ``closed`` (the client is gone: the worker stops),
    ``pieces``/``piece_bytes``/``body_done``/``gone`` (request body read ahead by the loop),
    ``reader_paused`` (the reader waits for room) and ``worker_waiting`` (the worker sleeps on
    ``signal``, a lock used as a one-shot semaphore).
    """

    __slots__ = (
        "app", "scope", "receive", "send", "loop", "send_queue_size", "script_name", "lock",
        "out", "held", "wake_pending", "waiter", "finished", "closed", "signal", "worker_waiting",
        "pieces", "piece_bytes", "body_done", "gone", "reader", "reader_paused", "reader_waiter",
        "status", "headers", "handed", "start", "final", "pathsend", "error",
        "reraise", "watcher", "sends",
    )

    def __init__(self, app, scope, receive, send, loop, send_queue_size, script_name):
        self.app = app
        self.scope = scope
        self.receive = receive
        self.send = send
        self.loop = loop
        self.send_queue_size = send_queue_size
        self.script_name = script_name
        self.lock = threading.Lock()
        self.out = []
        self.held = 0
        self.wake_pending = False
        self.waiter = loop.create_future()
        self.finished = False
        self.closed = False
        self.signal = threading.Lock()
        self.signal.acquire()
        self.worker_waiting = False
        self.pieces = None
        self.piece_bytes = 0
        self.body_done = True
        self.gone = False
        self.reader = None
        self.reader_paused = False
        self.reader_waiter = None
        self.watcher = None
        self.status = None
        self.headers = None
        self.handed = False
        self.start = None
        self.final = None
        self.pathsend = None
        self.error = None
        self.reraise = None
        self.sends = 0

    # ---- worker thread -------------------------------------------------------------------------

    def _wake_loop_locked(self):
        """With ``lock`` held: whether the caller must schedule a loop wake-up (after releasing)."""
        if self.wake_pending:
            return False
        self.wake_pending = True
        return True

    def _sleep(self):
        """Wait for the loop to signal; the caller set ``worker_waiting`` under ``lock``."""
        self.signal.acquire()

    def fetch(self):
        """Next piece of a streamed request body for ``Body``; b"" at its end."""
        while True:
            resume = None
            with self.lock:
                pieces = self.pieces
                if pieces:
                    piece = pieces.popleft()
                    self.piece_bytes -= len(piece)
                    if self.reader_paused and self.piece_bytes <= READ_AHEAD_BYTES // 2:
                        self.reader_paused = False
                        resume = self.reader_waiter
                elif self.closed:
                    raise ClientDisconnected(
                        "the client disconnected before the request body was complete"
                        if self.gone else "the client disconnected"
                    )
                elif self.body_done:
                    return b""
                else:
                    piece = None
                    self.worker_waiting = True
            if piece is not None:
                if resume is not None:
                    _call_soon(self.loop, _resolve, resume)
                return piece
            self._sleep()

    def start_response(self, status, headers, exc_info=None):
        """PEP 3333 ``start_response``; headers are checked here, so a bad one never goes out."""
        if exc_info is not None:
            if self.handed:
                try:
                    raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
        elif self.status is not None:
            raise RuntimeError(
                "start_response() called a second time without exc_info (PEP 3333): the status "
                "was already %r" % (self.status,)
            )
        code = parse_status(status)
        raw = encode_response_headers(headers)
        self.status = status
        self.headers = (code, raw)
        if exc_info is not None:
            self.reraise = exc_info[1]
        return self.write

    def write(self, data):
        """PEP 3333 ``write()``: hands ``data`` to the loop, after any chunk handed before it."""
        if type(data) is not bytes:
            raise TypeError("WSGI write() needs bytes, got %s" % type(data).__name__)
        if self.status is None:
            raise RuntimeError("WSGI write() called before start_response()")
        if data and not self._push(data):
            raise ClientDisconnected("the client disconnected")

    def _push(self, chunk):
        """Hand a non-empty chunk to the loop; False once the client is gone."""
        resume = None
        with self.lock:
            if self.closed:
                return False
            if not self.handed:
                self.handed = True
                self.start = self.headers
                if self.reader_paused and self.piece_bytes < STREAMING_READ_AHEAD_BYTES:
                    self.reader_paused = False
                    resume = self.reader_waiter
            self.out.append(chunk)
            self.held += 1
            wake = self._wake_loop_locked()
            block = self.held >= self.send_queue_size
            if block:
                self.worker_waiting = True
        if resume is not None:
            _call_soon(self.loop, _resolve, resume)
        if wake:
            _call_soon(self.loop, self._wakeup)
        while block:
            self._sleep()
            with self.lock:
                if self.closed:
                    return False
                block = self.held >= self.send_queue_size
                if block:
                    self.worker_waiting = True
        return True

    def run(self):
        """The worker's job: run the app, hand over its response, call ``close()`` once."""
        result = None
        try:
            try:
                environ = build_environ(self.scope, self.body(), self.script_name)
            except KeyError as exc:
                raise KeyError(
                    "the ASGI HTTP scope has no %r key (ASGI HTTP spec, 'HTTP Connection Scope')"
                    % (exc.args[0] if exc.args else None,)
                ) from None
            environ["wsgi.file_wrapper"] = FileWrapper
            result = self.app(environ, self.start_response)
            self._respond(result)
        except BaseException as exc:
            self._fail(exc)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException:
                    logger.exception("%s: the WSGI app's close() raised", self._where())
            with self.lock:
                self.finished = True
                wake = self._wake_loop_locked()
            if wake:
                _call_soon(self.loop, self._wakeup)

    def body(self):
        """``wsgi.input``: the whole body at hand, or pieces fetched from the loop's read-ahead."""
        if self.reader is None:
            return Body(functools.partial(next, iter(self.pieces), b""))
        return Body(self.fetch)

    def _respond(self, result):
        if not self.handed and (type(result) is list or type(result) is tuple):
            for chunk in result:
                if type(chunk) is not bytes:
                    raise TypeError(
                        "WSGI response body items must be bytes, got %s" % type(chunk).__name__
                    )
            if self.status is None:
                raise RuntimeError("the WSGI app returned without calling start_response()")
            self.final = result
            return
        if (
            type(result) is FileWrapper
            and not self.handed
            and self.status is not None
            and "http.response.pathsend" in (self.scope.get("extensions") or ())
        ):
            path = _file_path(result)
            if path is not None:
                self.pathsend = path
                return
        for chunk in result:
            if type(chunk) is not bytes:
                raise TypeError(
                    "WSGI response body items must be bytes, got %s" % type(chunk).__name__
                )
            if chunk:
                if not self._push(chunk):
                    return
            elif self.closed:
                return
        if self.status is None:
            raise RuntimeError("the WSGI app returned without calling start_response()")

    def _fail(self, exc):
        """An exception from the app: raised to the server if no header went out yet (after a
        500), else logged, since the client can no longer be told."""
        if self.handed:
            if self.closed:
                self._log_after_disconnect(exc)
            else:
                logger.error("%s: the WSGI app raised after the response headers were sent; the "
                             "response is cut short", self._where(), exc_info=exc)
        elif self.closed:
            self._log_after_disconnect(exc)
            return
        self.error = exc

    def _log_after_disconnect(self, exc):
        if isinstance(exc, ClientDisconnected):
            logger.info("%s: the client disconnected: %s", self._where(), exc)
        else:
            logger.error("%s: the WSGI app raised after the client disconnected", self._where(),
                         exc_info=exc)

    def _where(self):
        scope = self.scope
        return "%s %s" % (scope.get("method", "?"), scope.get("path", "?"))

    # ---- event loop ----------------------------------------------------------------------------

    def _wakeup(self):
        waiter = self.waiter
        if not waiter.done():
            waiter.set_result(None)

    def _release_worker_locked(self):
        if self.worker_waiting:
            self.worker_waiting = False
            self.signal.release()

    def client_gone(self, during_body=False):
        with self.lock:
            self.closed = True
            if during_body:
                self.gone = True
            self._release_worker_locked()

    async def read_body(self):
        """Read the request body ahead of the app, at most about READ_AHEAD_BYTES (twice that
        once the response is streaming), then watch for ``http.disconnect``."""
        receive = self.receive
        lock = self.lock
        while True:
            try:
                message = await receive()
            except Exception as exc:
                self._receive_failed(exc)
                return
            kind = message["type"]
            if kind == "http.disconnect":
                self.client_gone(during_body=True)
                return
            if kind != "http.request":
                continue
            piece = message.get("body", b"")
            if type(piece) is not bytes:
                piece = bytes(piece)
            more = message.get("more_body", False)
            with lock:
                if piece:
                    self.pieces.append(piece)
                    self.piece_bytes += len(piece)
                if not more:
                    self.body_done = True
                self._release_worker_locked()
                pause = more and self.piece_bytes >= (
                    STREAMING_READ_AHEAD_BYTES if self.handed else READ_AHEAD_BYTES
                )
                if pause:
                    self.reader_paused = True
                    waiter = self.reader_waiter = self.loop.create_future()
            if not more:
                break
            if pause:
                await waiter
        await self.watch()

    async def watch(self):
        """Wait for ``http.disconnect`` once the request body is complete. Per the ASGI HTTP spec
        nothing else can come then; a receive that returns anything else is not asked again."""
        try:
            message = await self.receive()
        except Exception as exc:
            self._receive_failed(exc)
            return
        if message.get("type") == "http.disconnect":
            self.client_gone()

    def _receive_failed(self, exc):
        logger.error("%s: the server's receive() raised; the request is abandoned", self._where(),
                     exc_info=exc)
        self.client_gone(during_body=True)

    def _disconnected(self, exc):
        logger.info("%s: the client disconnected: %s", self._where(), exc)
        self.client_gone()

    async def serve(self):
        """Send what the worker hands over until it is finished, then raise what must reach the
        server: an app error answered with a 500, or the ``exc_info`` of the app's own error
        response (as a2wsgi 1.10 does)."""
        loop = self.loop
        lock = self.lock
        started = False
        try:
            while True:
                with lock:
                    batch = self.out
                    finished = self.finished
                    if batch:
                        self.out = []
                    else:
                        # Not the list itself: the worker may append to it as soon as the lock
                        # is released, and it stays self.out, to be taken (and sent) next time.
                        batch = None
                        if not finished:
                            self.wake_pending = False
                            waiter = self.waiter = loop.create_future()
                if not batch and not finished:
                    await waiter
                    self.sends = 0
                    continue
                if not self.closed:
                    try:
                        if batch:
                            if not started:
                                started = True
                                if self.reader is None and not finished:
                                    self.watcher = loop.create_task(self.watch())
                                code, raw = self.start
                                await self.send(
                                    {"type": "http.response.start", "status": code, "headers": raw}
                                )
                            await self._send_batch(batch, finished and self.error is None)
                        elif started:
                            if self.error is None:
                                await self.send(_END)
                        else:
                            await self._send_final()
                    except OSError as exc:
                        self._disconnected(exc)
                if batch:
                    with lock:
                        self.held -= len(batch)
                        self._release_worker_locked()
                if finished:
                    break
        except BaseException:
            self.client_gone()
            raise
        finally:
            await self._stop_tasks()
        error = self.error
        if error is not None:
            self.error = None
            if not self.handed:
                raise error
        elif self.reraise is not None:
            error, self.reraise = self.reraise, None
            raise error

    async def _send_batch(self, batch, last):
        send = self.send
        if len(batch) > 1:
            total = 0
            for chunk in batch:
                total += len(chunk)
            if total <= _JOIN_LIMIT:
                batch = [b"".join(batch)]
        end = len(batch) - 1
        for i, chunk in enumerate(batch):
            if self.closed:
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": not (last and i == end)})
            self.sends += 1
            if self.sends >= _SENDS_PER_YIELD:
                self.sends = 0
                await asyncio.sleep(0)

    async def _send_final(self):
        """The whole response in one go: the app returned a list, a pathsend file, or failed."""
        send = self.send
        error = self.error
        if error is not None:
            await send({
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")],
            })
            await send({"type": "http.response.body", "body": b"Internal Server Error"})
            return
        code, raw = self.headers
        await send({"type": "http.response.start", "status": code, "headers": raw})
        if self.pathsend is not None:
            await send({"type": "http.response.pathsend", "path": self.pathsend})
        else:
            await self._send_batch(list(self.final or ()) or [b""], True)

    async def _stop_tasks(self):
        tasks = [t for t in (self.reader, self.watcher) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if self.reader_waiter is not None:
            _resolve(self.reader_waiter)
        if tasks:
            await asyncio.wait(tasks)


class WSGIMiddleware:
    """Serve the WSGI application ``app`` (PEP 3333) as an ASGI 3 application.

    ``workers`` threads at most run the app, started on demand and stopped at lifespan shutdown
    (or after ``IDLE_WORKER_SECONDS`` idle). A streamed response holds at most
    ``send_queue_size`` chunks ahead of the client.
    """

    def __init__(self, app, workers=10, send_queue_size=10):
        check_wsgi_app(app)
        if workers < 1:
            raise ValueError("workers must be at least 1, got %r" % (workers,))
        if send_queue_size < 1:
            raise ValueError("send_queue_size must be at least 1, got %r" % (send_queue_size,))
        self.app = app
        self.workers = workers
        self.send_queue_size = send_queue_size
        self._script_name = os.environ.get("SCRIPT_NAME", "")
        self._pool = None
        self._finalizer = None
        # Servers and frameworks tell an ASGI 3 app by a coroutine function at ``app.__call__``
        # (uvicorn, hypercorn, Starlette); calls go through the class's ``__call__``, which can
        # then refuse a WSGI server's ``(environ, start_response)`` with a message naming the fix.
        self.__call__ = self.asgi

    def _workers(self):
        pool = self._pool
        if pool is None:
            pool = self._pool = _Workers(self.workers)
            self._finalizer = weakref.finalize(self, pool.close)
        return pool

    def __call__(self, scope, receive=None, send=None, *more):
        if send is None or more:
            raise wrong_call_error("WSGIMiddleware", "(scope, receive, send)",
                                   "%d arguments" % (1 + (receive is not None) + (send is not None)
                                                     + len(more)))
        return self.asgi(scope, receive, send)

    async def asgi(self, scope, receive, send):
        """The ASGI 3 application."""
        require_asyncio()
        try:
            kind = scope["type"]
        except KeyError:
            raise KeyError("the ASGI scope has no 'type' key (ASGI spec: 'http', 'websocket' or "
                           "'lifespan')") from None
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1000})
        else:
            raise ValueError(
                "WSGIMiddleware cannot serve ASGI scope type %r: only 'http', 'websocket' "
                "(refused) and 'lifespan'" % (kind,)
            )

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def shutdown(self):
        """Stop the worker threads, each after its current request, and wait until they exit."""
        pool = self._pool
        if pool is None:
            return
        self._pool = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        threads = pool.close(lambda: _call_soon(loop, _resolve, done))
        await done
        for thread in threads:
            thread.join()

    async def _http(self, scope, receive, send):
        try:
            count = len(scope.get("headers"))
        except TypeError:
            count = 0
        if count > MAX_REQUEST_HEADERS:
            logger.info("%s %s: %d request headers, more than %d: answered 431 without running the "
                        "app", scope.get("method", "?"), scope.get("path", "?"), count,
                        MAX_REQUEST_HEADERS)
            body = b"Request Header Fields Too Large: more than %d headers" % MAX_REQUEST_HEADERS
            await send({
                "type": "http.response.start",
                "status": 431,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", b"%d" % len(body)), (b"connection", b"close")],
            })
            await send({"type": "http.response.body", "body": body})
            return
        message = await receive()
        if message["type"] != "http.request":
            return
        loop = asyncio.get_running_loop()
        exchange = _Exchange(self.app, scope, receive, send, loop, self.send_queue_size,
                             self._script_name)
        piece = message.get("body", b"")
        if type(piece) is not bytes:
            piece = bytes(piece)
        if message.get("more_body", False):
            exchange.pieces = collections.deque((piece,) if piece else ())
            exchange.piece_bytes = len(piece)
            exchange.body_done = False
            exchange.reader = loop.create_task(exchange.read_body())
        else:
            exchange.pieces = (piece,)
        self._workers().submit((contextvars.copy_context(), exchange.run))
        await exchange.serve()
