"""WSGIMiddleware: a WSGI application served by an ASGI server (PEP 3333 on the ASGI HTTP spec).

The app runs on a worker thread; everything ASGI happens on the event loop. The two meet only in
hand-offs (``a2wsgi/_handoff.py``): the response goes from the worker to the loop, a streamed
request body from the loop to the worker. A request is dispatched once its body is complete or
READ_AHEAD_BYTES of it arrived; a list or tuple response travels in one piece with the end of the
call, so a small request costs one hop to a worker and one wake-up back. The bridge is invisible:
an app error propagates out of the ASGI call as a native app's would, after the body bytes that
went before it, and nothing of the bridge's own is sent instead.
"""

import asyncio
import collections
import contextvars
import enum
import functools
import logging
import os
import queue
import threading
import weakref

from ._apps import asyncio_required, check_wsgi_app, wrong_call_error
from ._handoff import Handoff
from ._handoff import Phase as HandoffPhase
from ._hot import wsgi_hot

get_running_loop = asyncio.get_running_loop
translate_request_headers = wsgi_hot.translate_request_headers
build_environ = wsgi_hot.build_environ
Body = wsgi_hot.Body
encode_response_headers = wsgi_hot.encode_response_headers
parse_status = wsgi_hot.parse_status

__all__ = ("WSGIMiddleware", "Body", "build_environ", "FileWrapper", "ClientDisconnected")

logger = logging.getLogger("a2wsgi")

#: More request header pairs than this are answered with 431 without running the app.
MAX_REQUEST_HEADERS = 1000
#: Request body bytes read on the loop before a worker is taken: a request gets a worker once its
#: body is complete or this much of it arrived, so slow uploads cannot hold the workers.
READ_AHEAD_BYTES = 512 * 1024
#: Request body bytes held ahead of the app while it runs (twice READ_AHEAD_BYTES): an app that
#: streams without reading the body still has ``receive()`` asked, so a disconnect is seen on
#: servers whose ``send()`` does nothing once the client is gone (uvicorn). Nothing read is ever
#: discarded.
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
        # acquire()/release(), not ``with``: this runs once per request (see a2wsgi/_handoff.py)
        lock = self._lock
        lock.acquire()
        try:
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
        finally:
            lock.release()
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
            lock.acquire()
            try:
                if self._backlog:
                    self._backlog -= 1
                    waiting = False
                else:
                    self._idle += 1
                    waiting = True
            finally:
                lock.release()
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


class CallPhase(enum.Enum):
    """Where the WSGI call of one request is, as its worker thread sees it."""

    # Members are singletons compared by identity: the C identity hash keeps the transition
    # table's lookup out of Python (``Enum.__hash__`` is a Python function).
    __hash__ = object.__hash__

    STARTING = "starting"    # the app runs; no response byte was handed to the loop yet
    STREAMING = "streaming"  # the status line and a first body chunk were handed to the loop
    ENDED = "ended"          # the app finished its response
    FAILED = "failed"        # the app raised; the loop raises it to the server
    GONE = "gone"            # the client left; nothing more is handed over


_STARTING = CallPhase.STARTING
_STREAMING = CallPhase.STREAMING
_ENDED = CallPhase.ENDED
_FAILED = CallPhase.FAILED
_GONE = CallPhase.GONE
_OPEN = HandoffPhase.OPEN
_FINISHED = HandoffPhase.FINISHED
_CLOSED = HandoffPhase.CLOSED

_PHASE_MOVES = {
    _STARTING: (_STREAMING, _ENDED, _FAILED, _GONE),
    _STREAMING: (_ENDED, _FAILED, _GONE),
    _ENDED: (),
    _FAILED: (),
    _GONE: (),
}


class _Whole(tuple):
    """A response handed over in one piece, as the outcome of the response hand-off:
    ``(start, chunks, path)``, the start ``(status code, raw headers)`` and either the body
    chunks or a file path for pathsend. A tuple, so that making one (once per small request)
    runs no Python ``__init__``."""

    __slots__ = ()


class _Failure:
    """An app error for the loop to raise, as the outcome of the response hand-off. The loop
    takes the exception out (``take()``), so that the hand-off, which the raised exception's
    frames can reach, holds no reference back to it."""

    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error

    def take(self):
        error, self.error = self.error, None
        return error


class _WsgiCall:
    """The WSGI call of one HTTP request: the worker thread runs the app (``run``), the event
    loop speaks ASGI (``serve``, ``read_body``, ``watch``).

    The two sides share only two hand-offs. ``out`` carries the response from the worker to
    the loop: a ``(status code, raw headers)`` start item (count 0) before the first chunk, then
    non-empty body chunks; its outcome is None (clean end of a stream), a ``_Whole`` response, or
    a ``_Failure``. The worker finishes ``out`` as its last act, also once the loop closed it (the
    client left): the loop then waits for that in ``out.finished()``. ``inp`` carries a streamed
    request body from the loop to the worker (None when the whole body arrived before dispatch).
    The worker's own state is ``phase``; it moves only through ``_move``.
    """

    __slots__ = (
        "app", "scope", "receive", "send", "loop", "script_name", "out", "inp",
        "pieces", "reader", "watcher", "phase", "status", "start", "page_error", "sends",
        "input_end",
    )

    def __init__(self, app, scope, receive, send, loop, send_queue_size, script_name):
        self.app = app
        self.scope = scope
        self.receive = receive
        self.send = send
        self.loop = loop
        self.script_name = script_name
        self.out = Handoff(loop, "consumer", send_queue_size)
        self.inp = None
        self.pieces = None
        self.reader = None
        self.watcher = None
        self.phase = _STARTING
        self.status = None
        self.start = None
        self.page_error = None
        self.sends = 0
        self.input_end = None

    def _where(self):
        scope = self.scope
        return "%s %s" % (scope.get("method", "?"), scope.get("path", "?"))

    # ---- worker thread -------------------------------------------------------------------------

    def _move(self, phase):
        if phase not in _PHASE_MOVES[self.phase]:
            raise RuntimeError("a2wsgi bug: WSGI call moved from %s to %s"
                               % (self.phase.name, phase.name))
        self.phase = phase

    def run(self):
        """The worker's job: run the app, hand over its response, call its ``close()`` once,
        then finish the hand-offs (the loop returns or raises only after ``out`` is finished)."""
        result = None
        outcome = None
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
            outcome = self._respond(result)
        except BaseException as exc:
            outcome = self._fail(exc)
        finally:
            close = getattr(result, "close", None)
            result = None
            if close is not None:
                try:
                    close()
                except BaseException:
                    logger.exception("%s: the WSGI app's close() raised", self._where())
                close = None
            page_error, self.page_error = self.page_error, None
            if page_error is not None:
                if type(outcome) is not _Failure:
                    logger.error("%s: the WSGI app answered an error with its own response "
                                 "(start_response with exc_info)", self._where(),
                                 exc_info=page_error)
                page_error = None
            if self.inp is not None:
                self.inp.close()
            self.out.finish(outcome)

    def _respond(self, result):
        """Hand the app's response over; the outcome for ``out.finish()``."""
        if type(result) is list or type(result) is tuple:
            for chunk in result:
                if type(chunk) is not bytes:
                    raise TypeError(
                        "WSGI response body items must be bytes, got %s" % type(chunk).__name__
                    )
            if self.phase is _STARTING:
                if self.status is None:
                    raise RuntimeError("the WSGI app returned without calling start_response()")
                self._move(_ENDED)
                return _Whole((self.start, result, None))
            for chunk in result:
                if chunk and not self._hand(chunk):
                    return None
        else:
            if (
                type(result) is FileWrapper
                and self.phase is _STARTING
                and self.status is not None
                and "http.response.pathsend" in (self.scope.get("extensions") or ())
            ):
                path = _file_path(result)
                if path is not None:
                    self._move(_ENDED)
                    return _Whole((self.start, (), path))
            for chunk in result:
                if type(chunk) is not bytes:
                    raise TypeError(
                        "WSGI response body items must be bytes, got %s" % type(chunk).__name__
                    )
                if chunk:
                    if self.status is None:
                        raise RuntimeError(
                            "the WSGI app's iterable yielded a body chunk before it called "
                            "start_response() (PEP 3333)"
                        )
                    if not self._hand(chunk):
                        return None
        if self.phase is _STARTING:
            if self.status is None:
                raise RuntimeError("the WSGI app returned without calling start_response()")
            self._move(_ENDED)
            return _Whole((self.start, (), None))
        if self.phase is _STREAMING:
            self._move(_ENDED)
        return None

    def _fail(self, exc):
        """An exception from the app (or from ``write()``/``wsgi.input`` once the client left):
        the outcome for ``out.finish()``."""
        phase = self.phase
        if phase is _GONE or self.out.phase is _CLOSED:
            if phase is not _GONE:
                self._move(_GONE)
            if isinstance(exc, ClientDisconnected):
                logger.info("%s: the client disconnected: %s", self._where(), exc)
            else:
                logger.error("%s: the WSGI app raised after the client disconnected",
                             self._where(), exc_info=exc)
            return None
        self._move(_FAILED)
        return _Failure(exc)

    def start_response(self, status, headers, exc_info=None):
        """PEP 3333 ``start_response``; headers are checked here, so a bad one never goes out."""
        if exc_info is not None:
            if self.phase is not _STARTING:
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
        self.start = (code, raw)
        if exc_info is not None:
            self.page_error = exc_info[1]
            exc_info = None
        return self.write

    def write(self, data):
        """PEP 3333 ``write()``: hands ``data`` to the loop, after any chunk handed before it."""
        if type(data) is not bytes:
            raise TypeError("WSGI write() needs bytes, got %s" % type(data).__name__)
        if self.status is None:
            raise RuntimeError("WSGI write() called before start_response()")
        if data and not self._hand(data):
            raise ClientDisconnected("the client disconnected")

    def _hand(self, chunk):
        """Hand a non-empty chunk to the loop, after the start if it is the first; wait while
        ``send_queue_size`` chunks are held. False once the client is gone."""
        out = self.out
        if self.phase is not _STREAMING:
            if self.phase is not _STARTING:
                return False
            self._move(_STREAMING)
            out.put(self.start, 0, 0)
        if not out.put(chunk, len(chunk)):
            self._move(_GONE)
            return False
        if out.held_items >= out.max_items:  # has_room()'s test without its call (per chunk)
            out.wait_room()  # returns at once once the stream is closed
            if out.phase is _CLOSED:
                self._move(_GONE)
                return False
        return True

    def body(self):
        """``wsgi.input``: the whole body at hand, or pieces taken from the loop's read-ahead."""
        if self.inp is None:
            return Body(functools.partial(next, iter(self.pieces), b""))
        self.pieces = collections.deque()
        return Body(self.fetch)

    def fetch(self):
        """Next piece of a streamed request body for ``Body``; b"" at its end. A piece's credit
        goes back to the read-ahead when it is handed to the app."""
        pieces = self.pieces
        inp = self.inp
        while not pieces:
            end = self.input_end
            if end is not None:
                if end is _FINISHED:
                    return b""
                raise ClientDisconnected(
                    "the client disconnected before the request body was complete")
            batch = inp.poll()
            if batch is None:
                inp.signal.wait()
                continue
            pieces.extend(batch.items)
            if batch.phase is not _OPEN:
                # the pieces that came before the end are read first
                self.input_end = (_FINISHED if batch.outcome is None
                                  else _CLOSED)
        piece = pieces.popleft()
        inp.release(1, len(piece))
        return piece

    # ---- event loop ----------------------------------------------------------------------------

    def client_gone(self, reason):
        """The client left (or the server failed): the worker stops handing anything over."""
        self.out.close(reason)
        if self.inp is not None:
            self.inp.finish(reason)

    async def read_body(self):
        """Read the rest of a streamed request body ahead of the app, at most
        STREAMING_READ_AHEAD_BYTES held, then watch for ``http.disconnect``."""
        receive = self.receive
        inp = self.inp
        while True:
            await inp.room()
            if inp.phase is not _OPEN:
                return
            try:
                message = await receive()
            except Exception as exc:
                self._receive_failed(exc)
                return
            kind = message["type"]
            if kind == "http.disconnect":
                self.client_gone(ClientDisconnected("the client disconnected"))
                return
            if kind != "http.request":
                continue
            piece = message.get("body", b"")
            if type(piece) is not bytes:
                piece = bytes(piece)
            if piece:
                inp.put(piece, len(piece))
            if not message.get("more_body", False):
                inp.finish()
                break
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
            self.client_gone(ClientDisconnected("the client disconnected"))

    def _receive_failed(self, exc):
        logger.error("%s: the server's receive() raised; the request is abandoned", self._where(),
                     exc_info=exc)
        self.client_gone(ClientDisconnected("the server's receive() raised"))

    async def serve(self):
        """Send what the worker hands over until the app is done. Then raise the app's error,
        if it failed and the client is still there; return normally otherwise."""
        out = self.out
        started = False
        failure = None
        try:
            while True:
                waits = out.waits
                batch = await out.take()
                if out.waits != waits:
                    self.sends = 0  # other tasks ran while this one waited
                phase = batch.phase
                if phase is _CLOSED:
                    break
                outcome = batch.outcome if phase is _FINISHED else None
                items = batch.items
                count = batch.count
                nbytes = batch.nbytes
                batch = None
                try:
                    if items:
                        if not started:
                            started = True
                            start = items[0]
                            items = items[1:]
                            if (self.reader is None and self.watcher is None
                                    and phase is _OPEN):
                                self.watcher = self.loop.create_task(self.watch())
                            await self.send(
                                {"type": "http.response.start", "status": start[0],
                                 "headers": start[1]}
                            )
                        await self._send_chunks(items, phase is _FINISHED
                                                and outcome is None)
                        out.release(count, nbytes)
                    elif phase is _FINISHED and outcome is None and started:
                        await self.send(_END)
                    if type(outcome) is _Whole:
                        # the response in one piece: a list body or a pathsend file (inline,
                        # not a coroutine of its own: every small response comes this way)
                        (code, raw), chunks, path = outcome
                        await self.send({"type": "http.response.start", "status": code,
                                         "headers": raw})
                        if path is not None:
                            await self.send({"type": "http.response.pathsend", "path": path})
                        elif len(chunks) == 1:
                            # the usual small response: _send_chunks' steps, without its coroutine
                            if out.phase is not _CLOSED:
                                await self.send({"type": "http.response.body", "body": chunks[0],
                                                 "more_body": False})
                        else:
                            await self._send_chunks(list(chunks) or [b""], True)
                except OSError as exc:
                    logger.info("%s: the client disconnected: %s", self._where(), exc)
                    self.client_gone(exc)
                    break
                if phase is _FINISHED:
                    if type(outcome) is _Failure:
                        failure = outcome
                    break
        except BaseException:
            self.client_gone(ClientDisconnected("the ASGI call was cancelled or failed"))
            raise
        finally:
            if self.reader is not None or self.watcher is not None:
                await self._stop_tasks()
        if out.phase is _CLOSED:
            await out.finished()
        if failure is not None:
            error = failure.take()
            failure = None
            try:
                raise error
            finally:
                error = None

    async def _send_chunks(self, chunks, last):
        send = self.send
        if len(chunks) > 1:
            total = 0
            for chunk in chunks:
                total += len(chunk)
            if total <= _JOIN_LIMIT:
                chunks = [b"".join(chunks)]
        end = len(chunks) - 1
        out = self.out
        sends = self.sends  # counted in a local, stored back once (an error ends the call)
        for i, chunk in enumerate(chunks):
            if out.phase is _CLOSED:
                break
            await send({"type": "http.response.body", "body": chunk,
                        "more_body": not (last and i == end)})
            sends += 1
            if sends >= _SENDS_PER_YIELD:
                sends = 0
                await asyncio.sleep(0)
        self.sends = sends

    async def _stop_tasks(self):
        tasks = [t for t in (self.reader, self.watcher) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
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
        try:
            loop = get_running_loop()
        except RuntimeError:
            raise asyncio_required() from None
        try:
            kind = scope["type"]
        except KeyError:
            raise KeyError("the ASGI scope has no 'type' key (ASGI spec: 'http', 'websocket' or "
                           "'lifespan')") from None
        if kind == "http":
            await self._http(scope, receive, send, loop)
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

    async def _http(self, scope, receive, send, loop):
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
        # The worker is taken once the body is complete or READ_AHEAD_BYTES of it arrived, so
        # slow uploads wait on the loop, not in a worker thread.
        message = await receive()
        if message["type"] != "http.request":
            return
        piece = message.get("body", b"")
        if type(piece) is not bytes:
            piece = bytes(piece)
        pieces = [piece] if piece else []
        size = len(piece)
        more = streamed = message.get("more_body", False)
        while more and size < READ_AHEAD_BYTES:
            message = await receive()
            kind = message["type"]
            if kind == "http.disconnect":
                return
            if kind != "http.request":
                continue
            piece = message.get("body", b"")
            if type(piece) is not bytes:
                piece = bytes(piece)
            if piece:
                pieces.append(piece)
                size += len(piece)
            more = message.get("more_body", False)
        call = _WsgiCall(self.app, scope, receive, send, loop, self.send_queue_size,
                         self._script_name)
        if more:
            inp = call.inp = Handoff(loop, "producer", max_bytes=2 * READ_AHEAD_BYTES,
                                     signal=call.out.signal)
            for piece in pieces:
                inp.put(piece, len(piece))
            call.reader = loop.create_task(call.read_body())
        else:
            call.pieces = pieces
            if streamed:
                # A body in several messages: watch for http.disconnect from the start, as the
                # reader would have done.
                call.watcher = loop.create_task(call.watch())
        self._workers().submit((contextvars.copy_context(), call.run))
        await call.serve()
