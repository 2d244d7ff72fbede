"""ASGIMiddleware: an ASGI application served by a WSGI server.

The application runs on an asyncio event loop in one background thread per process (started
lazily, in the process that serves, so that a middleware created before a fork works in every
child), or on the ``loop`` the user passes. A request costs one hop to the loop and, for a small
body and a one-chunk response, one wake-up back:

- a small request body (``CONTENT_LENGTH`` up to 64 KiB) is read on the WSGI thread before the app
  is submitted; larger or chunked bodies are read in pieces, on the WSGI thread, when the app asks;
- ``send()`` appends to a bounded buffer and returns without waiting for the WSGI thread, unless the
  buffer is full; the WSGI thread wakes once per batch and yields the chunks to the server.
"""

import asyncio
import collections
import concurrent.futures
import logging
import os
import queue
import threading
import time
import traceback
import weakref

from ._apps import check_asgi_app, wrong_call_error
from ._hot import asgi_hot

build_scope = asgi_hot.build_scope
decode_response_headers = asgi_hot.decode_response_headers
status_line = asgi_hot.status_line
request_body_length = asgi_hot.request_body_length

__all__ = ("ASGIMiddleware", "build_scope", "ClientDisconnected")

logger = logging.getLogger("a2wsgi")

#: A request body up to this size, with a known length, is read before the app is started.
SMALL_BODY = 64 * 1024
#: Size of one ``wsgi.input.read()`` when the body is streamed to the app.
READ_SIZE = 64 * 1024
#: Pieces read each time the app runs out of request body (one hop there and back carries them).
READ_AHEAD = 4
#: ``send()`` waits for the WSGI thread once this many body chunks or bytes are held.
HELD_CHUNKS = 16
HELD_BYTES = 1024 * 1024

#: A request with more headers than this (after the server joined repeated ones) gets a 431.
MAX_REQUEST_HEADERS = 1000

_ERROR_BODY = b"Internal Server Error"
_ERROR_HEADERS = (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(_ERROR_BODY))))
_BAD_LENGTH_BODY = b"Bad Request: invalid Content-Length"
_BAD_LENGTH_HEADERS = (("Content-Type", "text/plain; charset=utf-8"),
                       ("Content-Length", str(len(_BAD_LENGTH_BODY))))
_TOO_MANY_HEADERS_BODY = b"Request Header Fields Too Large: more than %d headers" % MAX_REQUEST_HEADERS
_TOO_MANY_HEADERS_HEADERS = (("Content-Type", "text/plain; charset=utf-8"),
                             ("Content-Length", str(len(_TOO_MANY_HEADERS_BODY))))


class ClientDisconnected(OSError):
    """What ``send()`` raises once the WSGI server has closed the response early (the client went
    away): an ``OSError``, as the ASGI HTTP spec (2.4 and later) promises."""


def _describe(environ):
    return "%s %s%s" % (environ.get("REQUEST_METHOD", "?"), environ.get("SCRIPT_NAME", ""),
                        environ.get("PATH_INFO", ""))


def _report(environ, message, exc=None, level=logging.ERROR):
    """Log ``message`` about this request to the ``a2wsgi`` logger, and (warnings and errors) to
    the server's ``wsgi.errors`` stream (PEP 3333)."""
    where = _describe(environ)
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    logger.log(level, "%s: %s", where, message, exc_info=exc_info)
    if level < logging.WARNING:
        return
    errors = environ.get("wsgi.errors")
    if errors is None:
        return
    try:
        text = "a2wsgi: %s: %s\n" % (where, message)
        if exc_info is not None:
            text += "".join(traceback.format_exception(*exc_info))
        errors.write(text)
        errors.flush()
    except Exception:  # a closed or odd error stream must not hide the log record above
        logger.debug("could not write to wsgi.errors", exc_info=True)


def _caused_by_disconnect(exc):
    for _ in range(20):
        if exc is None:
            return False
        if isinstance(exc, ClientDisconnected):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _Exchange:
    """One request. The WSGI-thread side is the iterable returned to the server (``__next__``,
    ``close``); the loop side is the app task with ``receive``/``send``. Fields shared by the two
    threads are touched only with ``_mutex`` held; each other field belongs to one side."""

    def __init__(self, app, loop, environ, start_response, wait_time):
        self._app = app
        self._loop = loop
        self._environ = environ
        self._start_response = start_response
        self._wait_time = wait_time
        self._mutex = threading.Lock()
        self._wakeup = queue.SimpleQueue()
        # shared, under _mutex
        self._start = None          # (status, headers) from http.response.start
        self._out = []              # body chunks not yet taken by the WSGI thread
        self._out_bytes = 0
        self._ended = False         # the app sent its last body message
        self._pathsend = None       # the path of http.response.pathsend
        self._finished = False      # the app task is done
        self._error = None          # what the app raised
        self._sleeping = False      # the WSGI thread waits on _wakeup
        self._want_body = False     # the app waits for request body pieces
        self._send_blocked = False  # send() waits for the WSGI thread to take chunks
        # WSGI thread
        self._input = environ.get("wsgi.input")
        self._remaining = None      # body bytes still to read; None: read until EOF
        self._input_done = True
        self._input_gone = False    # wsgi.input failed or ended early: the client went away
        self._batch = None          # iterator over the chunks being yielded
        self._w_ended = False
        self._w_finished = False
        self._released = False      # the task is finished, or was cancelled after wait_time
        self._yielded = False       # a non-empty chunk went to the server: the headers are out
        self._complete = False      # nothing more to yield
        self._closed = False
        # loop
        self._task = None
        self._incoming = collections.deque()
        self._body_complete = False  # the last request body message is delivered or queued
        self._gone = False           # the client went away
        self._response_done = False
        self._waiters = []           # futures of receive() calls waiting for news
        self._read_requested = False
        self._drain = None           # future a send() awaits while the buffer is full
        self._start_sent = False
        self._body_sent = False

    # ------------------------------------------------------------------ WSGI thread

    def prepare_body(self, length):
        """Set up the request body before the app starts; read it now if it is small."""
        stream = self._input
        if length is None:
            if stream is not None and self._environ.get("wsgi.input_terminated"):
                self._input_done = False
                return
            length = 0
        if length == 0 or stream is None:
            self._incoming.append({"type": "http.request", "body": b"", "more_body": False})
            self._body_complete = True
        elif length <= SMALL_BODY:
            body = self._read_exactly(stream, length)
            if body is None:
                self._gone = self._input_gone = True
            else:
                self._incoming.append({"type": "http.request", "body": body, "more_body": False})
            self._body_complete = True
        else:
            self._remaining = length
            self._input_done = False

    def _read_exactly(self, stream, length):
        """``length`` bytes of input, or None if it ends early or fails (the client went away)."""
        try:
            data = stream.read(length)
            got = len(data)
            if got < length:
                parts = [data]
                while got < length:
                    more = stream.read(length - got)
                    if not more:
                        return None
                    parts.append(more)
                    got += len(more)
                data = b"".join(parts)
        except Exception as exc:
            _report(self._environ, "reading the request body failed: %r" % (exc,), level=logging.DEBUG)
            return None
        return data

    def _read_pieces(self):
        """Read up to READ_AHEAD pieces of the request body and hand them to the loop at once."""
        pieces = []
        complete = gone = False
        if self._closed:
            gone = True
        elif not self._input_done:
            stream = self._input
            try:
                for _ in range(READ_AHEAD):
                    remaining = self._remaining
                    data = stream.read(READ_SIZE if remaining is None else min(READ_SIZE, remaining))
                    if not data:
                        if remaining is None:
                            complete = True
                        else:
                            gone = True  # PEP 3333 input ended before CONTENT_LENGTH: never "complete"
                        break
                    pieces.append(data)
                    if remaining is not None:
                        remaining -= len(data)
                        self._remaining = remaining
                        if remaining <= 0:
                            complete = True
                            break
            except Exception as exc:
                _report(self._environ, "reading the request body failed: %r" % (exc,), level=logging.DEBUG)
                gone = True
            if complete or gone:
                self._input_done = True
            if gone:
                self._input_gone = True
        self._loop.call_soon_threadsafe(self._feed, pieces, complete, gone)

    def _take(self, timeout=None, until_finished=False):
        """Block until the app has produced body chunks, ended its body or finished (with
        ``until_finished``: until it finished), reading request body pieces meanwhile when it
        asks. Returns False if ``timeout`` passed first."""
        chunks = None
        while True:
            with self._mutex:
                if self._want_body:
                    self._want_body = False
                    read = True
                else:
                    read = False
                    if self._finished or (not until_finished and (self._out or self._ended)):
                        if self._out:  # taken; never the list itself left for the app to append to
                            chunks = self._out
                            self._out = []
                            self._out_bytes = 0
                        self._w_ended = self._ended
                        self._w_finished = self._finished
                        resume = self._send_blocked
                        self._send_blocked = False
                        break
                    self._sleeping = True
            if read:
                self._read_pieces()
                continue
            try:
                self._wakeup.get(timeout=timeout)
            except queue.Empty:
                with self._mutex:
                    self._sleeping = False
                return False
        if resume:
            self._loop.call_soon_threadsafe(self._resume_send)
        if self._w_finished:
            self._released = True
        if chunks:
            self._batch = iter(chunks)
        return True

    def respond(self):
        """Wait for the response to start, call ``start_response`` and return the WSGI iterable."""
        self._take()
        start = self._start
        if start is None or not self._w_ended and self._w_finished:
            return self._fail_before_body()
        status, headers = start
        if self._pathsend is not None:
            return self._serve_path(status, headers)
        try:
            self._start_response(status, headers)
        except BaseException:
            self.close()  # the server cannot send this response: for the app, the client went away
            raise
        if self._w_finished:
            self._complete = True
            chunks = list(self._batch) if self._batch is not None else []
            self._batch = None
            return chunks
        return self

    def _fail_before_body(self):
        """PEP 3333: a 500 through ``start_response(..., exc_info)``, the headers not sent yet."""
        error = self._error
        if error is None:
            error = RuntimeError("the ASGI app returned without %s" % (
                "sending http.response.start" if self._start is None else "completing its response body"))
            self._report_unfinished(str(error))
        self._complete = True
        self._batch = None
        self._start_response("500 Internal Server Error", list(_ERROR_HEADERS),
                             (type(error), error, error.__traceback__))
        return [_ERROR_BODY]

    def _serve_path(self, status, headers):
        if not self._w_finished:
            self._wait_for_task()
        path = self._pathsend
        try:
            f = open(path, "rb")
        except OSError as exc:
            self._error = exc
            _report(self._environ, "http.response.pathsend: cannot open %r" % (path,), exc)
            return self._fail_before_body()
        self._complete = True
        try:
            self._start_response(status, headers)
            wrapper = self._environ.get("wsgi.file_wrapper")
            if wrapper is not None:
                return wrapper(f, READ_SIZE)
        except BaseException:
            f.close()
            raise
        return _FileChunks(f)

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            batch = self._batch
            if batch is not None:
                for chunk in batch:
                    self._yielded = True
                    return chunk
                self._batch = None
            if self._complete:
                raise StopIteration
            if self._w_ended:
                self._complete = True
                if not self._w_finished:
                    self._wait_for_task()
                raise StopIteration
            if self._w_finished:
                return self._fail_in_body()
            self._take()

    def _fail_in_body(self):
        """The app finished without ending its body: a 500 if nothing was sent yet, else the error
        is raised to the server (which aborts the response), or the body is cut short."""
        self._complete = True
        error = self._error
        if error is None:
            if self._yielded:
                self._report_unfinished("the ASGI app returned without completing its response body; "
                                        "the response is cut short")
                raise StopIteration
            error = RuntimeError("the ASGI app returned without completing its response body")
            self._report_unfinished(str(error))
        if self._yielded:
            raise error
        self._start_response("500 Internal Server Error", list(_ERROR_HEADERS),
                             (type(error), error, error.__traceback__))
        return _ERROR_BODY

    def _report_unfinished(self, message):
        """An app that stops short is an error, unless the client had gone away while sending the
        request body (the app saw ``http.disconnect``; returning is its right answer)."""
        if self._input_gone:
            _report(self._environ, message + " (the client went away while sending the request body)",
                    level=logging.DEBUG)
        else:
            _report(self._environ, message)

    def _wait_for_task(self):
        """After the last body: wait for the app's background work, at most ``wait_time``, then
        cancel it."""
        wait_time = self._wait_time
        if wait_time is None:
            self._take(until_finished=True)
            return
        if not self._take(max(wait_time, 0.0), until_finished=True):
            self._released = True
            self._loop.call_soon_threadsafe(self._cancel)

    def close(self):
        """PEP 3333 ``close()``. Before the body ended, the client went away: the app's pending
        ``receive()`` gets ``http.disconnect``, its ``send()`` raises ``OSError``."""
        if self._closed:
            return
        self._closed = True
        self._batch = None
        self._complete = True
        if self._released:
            return
        if not self._w_ended:
            self._loop.call_soon_threadsafe(self._disconnect)
        self._wait_for_task()

    # ------------------------------------------------------------------ loop

    def begin(self, scope):
        """Start the app task (on the loop: the one hop of the request)."""
        try:
            self._task = task = self._loop.create_task(self._app(scope, self.receive, self.send))
        except Exception as exc:
            self._on_error(exc)
            self._finish()
            return
        task.add_done_callback(self._task_done)

    def _task_done(self, task):
        if task.cancelled():
            if not (self._gone or self._response_done):
                self._on_error(RuntimeError("the ASGI app task was cancelled"))
        else:
            exc = task.exception()
            if exc is not None:
                self._on_error(exc)
        self._finish()

    def _on_error(self, exc):
        with self._mutex:
            self._error = exc
        if self._gone and (isinstance(exc, OSError) or _caused_by_disconnect(exc)):
            _report(self._environ, "the ASGI app ended on the client's disconnect: %r" % (exc,),
                    level=logging.DEBUG)
        else:
            _report(self._environ, "the ASGI app raised an exception", exc)

    def _finish(self):
        self._response_done = True
        self._notify_receivers()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)
        with self._mutex:
            self._finished = True
            wake = self._sleeping
            self._sleeping = False
        if wake:
            self._wakeup.put(None)

    def _wake_unless_done(self):
        """Deferred wake-up after the last body: if the task finished meanwhile, its done callback
        (already scheduled) wakes the WSGI thread once, with both news."""
        task = self._task
        if task is not None and task.done():
            return
        with self._mutex:
            wake = self._sleeping
            self._sleeping = False
        if wake:
            self._wakeup.put(None)

    def _cancel(self):
        task = self._task
        if task is not None and not task.done():
            logger.debug("%s: wait_time passed after the response; cancelling the ASGI app task",
                         _describe(self._environ))
            self._gone = True
            task.cancel()

    def _disconnect(self):
        self._gone = True
        self._notify_receivers()
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _resume_send(self):
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _notify_receivers(self):
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _feed(self, pieces, complete, gone):
        self._read_requested = False
        incoming = self._incoming
        for piece in pieces:
            incoming.append({"type": "http.request", "body": piece, "more_body": True})
        if complete:
            if pieces:
                incoming[-1]["more_body"] = False
            else:
                incoming.append({"type": "http.request", "body": b"", "more_body": False})
            self._body_complete = True
        if gone:
            self._gone = True
        self._notify_receivers()

    def _request_body(self):
        self._read_requested = True
        with self._mutex:
            self._want_body = True
            wake = self._sleeping
            self._sleeping = False
        if wake:
            self._wakeup.put(None)

    async def receive(self):
        """ASGI ``receive``: the request body in pieces; then ``http.disconnect`` once the response
        is complete or the client went away (ASGI HTTP spec, "Disconnected - receive event")."""
        while True:
            incoming = self._incoming
            if incoming:
                message = incoming.popleft()
                if message["more_body"] and not incoming and not self._read_requested and not self._gone:
                    self._request_body()
                return message
            if self._gone or (self._body_complete and self._response_done):
                return {"type": "http.disconnect"}
            if not self._body_complete and not self._read_requested:
                self._request_body()
            fut = self._loop.create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if not fut.done():
                    fut.cancel()
                    if fut in self._waiters:
                        self._waiters.remove(fut)

    async def send(self, message):
        """ASGI ``send``: response messages go to the WSGI thread through a bounded buffer."""
        if self._gone:
            raise ClientDisconnected("the client disconnected")
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise ValueError("an ASGI message must be a dict with a 'type' key, got %r" % (message,)) from None
        if kind == "http.response.body":
            if not self._start_sent:
                raise RuntimeError("ASGI http.response.body sent before http.response.start")
            if self._body_sent:
                raise RuntimeError("ASGI http.response.body sent after the response body was complete")
            body = message.get("body", b"")
            if type(body) is not bytes:
                if not isinstance(body, (bytes, bytearray, memoryview)):
                    raise TypeError("ASGI http.response.body 'body' must be bytes, got %s"
                                    % type(body).__name__)
                body = bytes(body)
            more = message.get("more_body", False)
            with self._mutex:
                if body:
                    self._out.append(body)
                    self._out_bytes += len(body)
                if more:
                    full = self._out_bytes >= HELD_BYTES or len(self._out) >= HELD_CHUNKS
                    if full:
                        self._send_blocked = True
                    wake = self._sleeping and bool(body)
                    if wake:
                        self._sleeping = False
                else:
                    full = wake = False
                    self._ended = True
            if wake:
                self._wakeup.put(None)
            if not more:
                self._end_response()
            elif full:
                fut = self._drain = self._loop.create_future()
                try:
                    await fut
                finally:
                    self._drain = None
                if self._gone:
                    raise ClientDisconnected("the client disconnected")
            return
        if kind == "http.response.start":
            if self._start_sent:
                raise RuntimeError("ASGI http.response.start sent twice")
            status = status_line(message.get("status"))
            headers = decode_response_headers(message.get("headers", ()))
            if message.get("trailers"):
                raise RuntimeError("ASGI http.response.start asks for trailers, but a WSGI server cannot "
                                   "send them (the http.response.trailers extension is not offered)")
            self._start_sent = True
            with self._mutex:
                self._start = (status, headers)
            return
        if kind == "http.response.pathsend":
            if not self._start_sent:
                raise RuntimeError("ASGI http.response.pathsend sent before http.response.start")
            if self._body_sent:
                raise RuntimeError("ASGI http.response.pathsend sent after the response body was complete")
            path = message.get("path")
            if not isinstance(path, str):
                raise TypeError("ASGI http.response.pathsend 'path' must be a str, got %s"
                                % type(path).__name__)
            with self._mutex:
                if self._out or self._yielded:
                    raise RuntimeError("ASGI http.response.pathsend sent after http.response.body")
                self._pathsend = path
                self._ended = True
            self._end_response()
            return
        if kind == "http.response.trailers":
            raise RuntimeError("ASGI http.response.trailers is not supported: a WSGI server cannot send "
                               "trailers, and the http.response.trailers extension is not offered")
        raise ValueError("unexpected ASGI message type %r on an HTTP connection; expected "
                         "http.response.start, http.response.body or http.response.pathsend" % (kind,))

    def _end_response(self):
        self._body_sent = True
        self._response_done = True
        self._notify_receivers()
        self._loop.call_soon(self._wake_unless_done)


class _FileChunks:
    """A file read in chunks, for servers without ``wsgi.file_wrapper``."""

    def __init__(self, f):
        self._f = f

    def __iter__(self):
        return self

    def __next__(self):
        data = self._f.read(READ_SIZE)
        if not data:
            raise StopIteration
        return data

    def close(self):
        self._f.close()


# ---------------------------------------------------------------------- event loop and lifespan

_LIFESPAN_SCOPE_ASGI = {"version": "3.0", "spec_version": "2.0"}
_forked_runtimes = []  # a parent's runtime copied into a forked child: kept, never touched


class _Runtime:
    """The event loop that runs the app in one process (its own thread, or the user's loop), and
    the app's lifespan (ASGI lifespan spec 2.0). Holds no reference to the middleware, so that the
    middleware's finalizer can shut it down."""

    def __init__(self, app, loop):
        self.pid = os.getpid()
        self.app = app
        self.state = {}
        self.failure = None          # the startup.failed message, if any
        self.thread = None
        self.closed = False
        self._lifespan = False       # the app completed lifespan startup: shutdown is owed
        self._inbox = collections.deque()
        self._inbox_waiter = None
        self._shutdown_posted = False
        self._startup = concurrent.futures.Future()
        self._shutdown = concurrent.futures.Future()
        if loop is None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            self.thread = threading.Thread(target=self._run, name="a2wsgi-asgi-loop", daemon=True)
            self.thread.start()
        else:
            self.loop = loop

    def _run(self):
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            while True:
                try:
                    loop.run_forever()
                except BaseException as exc:  # SystemExit or KeyboardInterrupt out of an app task
                    logger.error("the ASGI app raised %r on the event loop; it keeps running", exc)
                    continue
                break
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=5))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def start(self):
        """Run lifespan startup and wait for its outcome (on a WSGI thread, once per process)."""
        if self.thread is None and not self.loop.is_running():
            raise RuntimeError("the event loop passed to ASGIMiddleware(loop=...) is not running; start "
                               "it (loop.run_forever() in a thread) before the first request")
        self._inbox.append({"type": "lifespan.startup"})
        self.loop.call_soon_threadsafe(self._start_lifespan)
        outcome, message = self._startup.result()
        if outcome == "failed":
            self.failure = message or "(no message)"
            logger.error("ASGI lifespan startup failed: %s", self.failure)
        self._lifespan = outcome == "complete"

    def _start_lifespan(self):
        scope = {"type": "lifespan", "asgi": dict(_LIFESPAN_SCOPE_ASGI), "state": self.state}
        self.loop.create_task(self._lifespan_main(scope))

    async def _lifespan_main(self, scope):
        try:
            await self.app(scope, self._lifespan_receive, self._lifespan_send)
        except Exception as exc:
            if not self._startup.done():
                logger.info("ASGI lifespan appears unsupported by the app (it raised %r); serving "
                            "without it", exc)
            elif self._shutdown_posted:
                logger.error("ASGI lifespan shutdown raised an exception", exc_info=True)
            else:
                logger.error("ASGI lifespan raised an exception", exc_info=True)
        finally:
            if not self._startup.done():
                self._startup.set_result(("unsupported", ""))
            if not self._shutdown.done():
                self._shutdown.set_result(("returned", ""))

    async def _lifespan_receive(self):
        while not self._inbox:
            fut = self._inbox_waiter = self.loop.create_future()
            try:
                await fut
            finally:
                self._inbox_waiter = None
        return self._inbox.popleft()

    async def _lifespan_send(self, message):
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "lifespan.startup.complete" or kind == "lifespan.startup.failed":
            if self._startup.done():
                raise RuntimeError("ASGI %s sent, but startup is already over" % kind)
            self._startup.set_result(("complete" if kind.endswith("complete") else "failed",
                                      message.get("message", "")))
        elif kind == "lifespan.shutdown.complete" or kind == "lifespan.shutdown.failed":
            if not self._shutdown.done():
                self._shutdown.set_result(("complete" if kind.endswith("complete") else "failed",
                                           message.get("message", "")))
        else:
            raise ValueError("unexpected ASGI message %r on the lifespan connection; expected "
                             "lifespan.startup.complete/failed or lifespan.shutdown.complete/failed"
                             % (message,))

    def _post_shutdown(self):
        self._shutdown_posted = True
        self._inbox.append({"type": "lifespan.shutdown"})
        waiter = self._inbox_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def shutdown(self, timeout=None):
        """Run lifespan shutdown, then stop our own loop thread. Does nothing in a forked child
        (the runtime belongs to the parent) or on the loop's own thread (it cannot wait there)."""
        if self.closed or self.pid != os.getpid():
            return
        self.closed = True
        loop = self.loop
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            if self.thread is not None:
                loop.call_soon(loop.stop)
            return
        if loop.is_closed():
            return
        if self._lifespan and loop.is_running():
            loop.call_soon_threadsafe(self._post_shutdown)
            try:
                outcome, message = self._shutdown.result(timeout)
            except concurrent.futures.TimeoutError:
                logger.error("ASGI lifespan shutdown did not finish within %s s", timeout)
            else:
                if outcome == "failed":
                    logger.error("ASGI lifespan shutdown failed: %s", message or "(no message)")
        if self.thread is not None:
            if loop.is_running():
                loop.call_soon_threadsafe(loop.stop)
            self.thread.join(timeout)


class ASGIMiddleware:
    """A WSGI application (PEP 3333) that serves the ASGI 3 application ``app``.

    ``wait_time``: after the last response body, how long (seconds) to wait for the app's
    remaining work (background tasks) before cancelling it; None waits for it to finish.
    ``loop``: an event loop, already running in another thread, to run the app on; by default the
    middleware starts its own, in a daemon thread, at the first request in each process.

    The app's lifespan startup runs before the first request is served, and its shutdown at
    interpreter exit or on ``close()``.
    """

    def __init__(self, app, wait_time=None, loop=None):
        check_asgi_app(app)
        self.app = app
        self.wait_time = wait_time
        self._user_loop = loop
        self._runtime = None
        self._finalizer = None
        self._lock = threading.Lock()

    @property
    def loop(self):
        """The event loop the app runs on in this process (None before the first request)."""
        if self._user_loop is not None:
            return self._user_loop
        runtime = self._runtime
        return runtime.loop if runtime is not None and runtime.pid == os.getpid() else None

    def _start_runtime(self):
        with self._lock:
            runtime = self._runtime
            if runtime is not None:
                if runtime.pid == os.getpid():
                    return runtime
                _forked_runtimes.append(runtime)
                if self._finalizer is not None:
                    self._finalizer.detach()
                    self._finalizer = None
                self._runtime = None
            runtime = _Runtime(self.app, self._user_loop)
            finalizer = weakref.finalize(self, runtime.shutdown)
            try:
                runtime.start()
            except BaseException:
                finalizer.detach()
                runtime.shutdown()
                raise
            self._finalizer = finalizer
            self._runtime = runtime
            return runtime

    def close(self, timeout=None):
        """Run the app's lifespan shutdown and stop the event loop thread (not a user's loop).

        Called at interpreter exit if not before. A request after ``close()`` starts afresh.
        """
        with self._lock:
            runtime, self._runtime = self._runtime, None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if runtime is not None:
            runtime.shutdown(timeout)

    def __call__(self, environ, start_response=None, *more):
        if start_response is None or more:
            raise wrong_call_error("ASGIMiddleware", "(environ, start_response)",
                                   "%d arguments" % (1 + (start_response is not None) + len(more)))
        runtime = self._runtime
        if runtime is None or runtime.pid != os.getpid():
            runtime = self._start_runtime()
        if runtime.failure is not None:
            raise RuntimeError("the ASGI app's lifespan startup failed, so it cannot serve requests: %s"
                               % runtime.failure)
        try:
            length = request_body_length(environ)
        except ValueError as exc:
            _report(environ, str(exc), level=logging.INFO)
            start_response("400 Bad Request", list(_BAD_LENGTH_HEADERS))
            return [_BAD_LENGTH_BODY]
        scope = build_scope(environ)
        if len(scope["headers"]) > MAX_REQUEST_HEADERS:
            _report(environ, "%d request headers, more than %d: answered 431 without calling the app"
                    % (len(scope["headers"]), MAX_REQUEST_HEADERS), level=logging.INFO)
            start_response("431 Request Header Fields Too Large", list(_TOO_MANY_HEADERS_HEADERS))
            return [_TOO_MANY_HEADERS_BODY]
        scope["state"] = runtime.state.copy()
        exchange = _Exchange(self.app, runtime.loop, environ, start_response, self.wait_time)
        exchange.prepare_body(length)
        runtime.loop.call_soon_threadsafe(exchange.begin, scope)
        return exchange.respond()
