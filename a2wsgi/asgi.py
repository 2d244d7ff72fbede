"""ASGIMiddleware: an ASGI application served by a WSGI server (A->W).

This module holds only the protocol: one ``_ASGICall`` per WSGI request runs the app's
``receive``/``send`` on the event loop and is the WSGI iterable on the server's thread. The
bytes cross between the two through ``a2wsgi._handoff`` (response body: the loop produces in
``send()``, the WSGI thread consumes and releases each chunk as it yields it; request body: the
WSGI thread reads ``wsgi.input`` when the app asks, the loop consumes in ``receive()``). The loop
thread and lifespan live in ``a2wsgi._runtime``.

A request costs one hop to the loop and, for a small body and a one-chunk response, one wake-up
back: a request body up to ``SMALL_BODY`` with a known length is read before the app starts;
``send()`` returns without waiting for the WSGI thread unless ``HELD_CHUNKS`` chunks or
``HELD_BYTES`` bytes are held.

The WSGI thread waits only on its ``Signal`` (shared by the hand-offs it waits on), with a
deadline; the loop is reached only through ``schedule``.
"""

import asyncio
import collections
import enum
import logging
import os
import sys
import threading
import time
import traceback
import weakref

from ._apps import check_asgi_app, wrong_call_error
from ._handoff import Handoff, Phase as Stream, Signal
from ._hot import asgi_hot
from ._runtime import Startup, _InlineRuntime, _Runtime

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
#: Pieces read each time the app runs out of request body (one wake-up carries them).
READ_AHEAD = 4
#: ``send()`` waits for the WSGI thread while this many body chunks or bytes are produced and not
#: yet handed to the server (taken but not yielded counts as held).
HELD_CHUNKS = 16
HELD_BYTES = 1024 * 1024

#: Inline mode: after a client disconnect (``wait_time`` None), the longest ``close()`` drives the
#: loop so that the app hears of it; what is left runs while a later request drives the loop.
INLINE_GONE_GRACE = 1.0

#: A request with more headers than this (after the server joined repeated ones) gets a 431.
MAX_REQUEST_HEADERS = 1000

_ERROR_BODY = b"Internal Server Error"
_ERROR_HEADERS = (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(_ERROR_BODY))))
_BAD_LENGTH_BODY = b"Bad Request: invalid Content-Length"
_BAD_LENGTH_HEADERS = (("Content-Type", "text/plain; charset=utf-8"),
                       ("Content-Length", str(len(_BAD_LENGTH_BODY))))
_SHORT_BODY = b"Bad Request: the request body ended before Content-Length"
_SHORT_HEADERS = (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(_SHORT_BODY))))
_TOO_MANY_HEADERS_BODY = b"Request Header Fields Too Large: more than %d headers" % MAX_REQUEST_HEADERS
_TOO_MANY_HEADERS_HEADERS = (("Content-Type", "text/plain; charset=utf-8"),
                             ("Content-Length", str(len(_TOO_MANY_HEADERS_BODY))))
_DISCONNECT = {"type": "http.disconnect"}
_EAGER = sys.version_info >= (3, 12)


_thread_signals = threading.local()


def _thread_signal():
    """The ``Signal`` the calling server thread waits on, made at its first request. A thread
    waits for one request at a time, and every wait re-checks what it waits for, so a permit an
    earlier request left is a spurious wake-up, never a lost one."""
    signal = getattr(_thread_signals, "signal", None)
    if signal is None:
        signal = _thread_signals.signal = Signal()
    return signal


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


def _clear_frames(exc):
    """Drop the local variables of the finished frames in ``exc``'s tracebacks (and its causes'),
    so that no reference cycle (exception -> traceback -> frame -> this call) keeps a request, and
    what the app's frames hold (an async generator whose ``finally`` must run), alive until the
    cyclic garbage collector runs."""
    seen = 0
    while exc is not None and seen < 20:
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
        seen += 1


class Phase(enum.Enum):
    """The app's response, as the loop sees it (the ASGI HTTP spec's message order)."""

    STARTING = "starting"    # no http.response.start yet
    STARTED = "started"      # http.response.start, no body message yet
    STREAMING = "streaming"  # one or more body messages, more to come
    ENDED = "ended"          # the last body message (more_body=False) or pathsend
    FAILED = "failed"        # the app task ended (raised, returned, was cancelled) before ENDED
    GONE = "gone"            # the client went away (the server closed the response) before ENDED


_ALLOWED = {
    Phase.STARTING: (Phase.STARTED, Phase.FAILED, Phase.GONE),
    Phase.STARTED: (Phase.STREAMING, Phase.ENDED, Phase.FAILED, Phase.GONE),
    Phase.STREAMING: (Phase.ENDED, Phase.FAILED, Phase.GONE),
    Phase.ENDED: (),
    Phase.FAILED: (),
    Phase.GONE: (),
}
# Tuples, checked with ``in`` (identity first, in C) and reached through an attribute of each
# member: an Enum's __hash__ is Python code, and a dict or frozenset lookup would call it.
_OVER = (Phase.ENDED, Phase.FAILED, Phase.GONE)
for _phase, _next in _ALLOWED.items():
    _phase.allowed = _next


class Serving(enum.Enum):
    """Where the WSGI iterable is, on the server's thread."""

    HEAD = "head"        # waiting for the first body message (start_response not called yet)
    BODY = "body"        # yielding body chunks
    DONE = "done"        # the iteration is over (the body ended, or its error was raised)
    CLOSED = "closed"    # close() was called


_SERVING_ALLOWED = {
    Serving.HEAD: (Serving.BODY, Serving.DONE, Serving.CLOSED),
    Serving.BODY: (Serving.DONE, Serving.CLOSED),
    Serving.DONE: (Serving.CLOSED,),
    Serving.CLOSED: (),
}
for _phase, _next in _SERVING_ALLOWED.items():
    _phase.allowed = _next
del _phase, _next

# Module-level names for the members used on the per-request and per-chunk paths: a global load
# is specialised by the interpreter, an attribute of an Enum class is looked up on each use.
_STARTING, _STARTED, _STREAMING = Phase.STARTING, Phase.STARTED, Phase.STREAMING
_ENDED, _FAILED, _GONE = Phase.ENDED, Phase.FAILED, Phase.GONE
_HEAD, _BODY, _DONE, _CLOSED = Serving.HEAD, Serving.BODY, Serving.DONE, Serving.CLOSED
_STREAM_OPEN, _STREAM_CLOSED = Stream.OPEN, Stream.CLOSED


class _Head(tuple):
    """The response head, handed over with the first body message (PEP 3333 lets
    ``start_response`` wait for it): ``(status, headers, sized, file)``, ``sized`` when that
    message ended the body, ``file`` (or None) for ``http.response.pathsend``. A tuple, so that
    making one (once per request) runs no Python ``__init__``."""

    __slots__ = ()


class _Gone:
    """Outcome markers for the request-body hand-off."""

    __slots__ = ("why",)

    def __init__(self, why):
        self.why = why

    def __repr__(self):
        return "<%s>" % self.why


class _Running:
    """The response hand-off's outcome when the body ended while the app task still runs: the
    end time, and the hand-off the loop finishes when the task is done (for ``close()``)."""

    __slots__ = ("ended_at", "task_end")

    def __init__(self, ended_at, task_end):
        self.ended_at = ended_at
        self.task_end = task_end


#: ``_ASGICall._task_end`` once the app task is over.
_TASK_OVER = _Gone("the app task is over")

_CLIENT_GONE = _Gone("the client went away")
_INPUT_SHORT = _Gone("wsgi.input ended before CONTENT_LENGTH")
_INPUT_FAILED = _Gone("reading wsgi.input failed")


class _Chunks(list):
    """A complete response: a list (``len() == 1`` lets the server set Content-Length) whose
    ``close()`` waits for the app's remaining work as the streaming iterable's does. (A plain
    list when the app task was over by then and, inline, no loop needs driving.)"""

    __slots__ = ("_call",)

    def close(self):
        call, self._call = self._call, None
        if call is not None:
            call.close()


class _ASGICall:
    """One call of the ASGI app for one WSGI request.

    Server's thread: ``respond()`` (waits for the first body message, calls ``start_response``)
    and the WSGI iterable (``__next__``, ``close``), position in ``_serving``. Loop: the app task
    with ``receive``/``send``, the response in ``_phase``. The two share nothing but the
    hand-offs: ``_response`` (the head and body chunks; finished with the end time, a ``_Running``
    when the app task outlives the body, or the app's error), ``_request`` (request body pieces,
    pulled; finished with None or a ``_Gone``; only for a body streamed to the app: one read
    before the app starts goes with the hop, in ``_early``) and the task-end hand-off a
    waiting ``close()`` polls (finished when the app task is done; created only when one waits).
    """

    # slots: more than 30 attributes would leave an instance dict unshared, built key by key
    __slots__ = (
        "_owner", "_app", "_loop", "_environ", "_start_response", "_wait_time", "_signal",
        "_schedule", "_inline_grace", "_response", "_request", "_task_end", "_early",
        "_serving", "_items", "_pos", "_released", "_release_at", "_head", "_end", "_input", "_remaining", "_input_open",
        "_input_short",
        "_phase", "_task", "_start", "_trailers", "_incoming", "_request_done", "_disconnected",
        "_reading", "_receivers", "_senders", "_final", "_ended_at", "_cancel_timer",
    )

    def __init__(self, owner, loop, environ, start_response, schedule=None, signal=None,
                 inline_grace=None):
        self._owner = owner
        self._app = owner.app
        self._loop = loop
        self._environ = environ
        self._start_response = start_response
        self._wait_time = owner.wait_time
        self._inline_grace = inline_grace  # inline mode: seconds close() drives the loop after a disconnect
        signal = self._signal = Signal() if signal is None else signal
        self._schedule = schedule = loop.call_soon_threadsafe if schedule is None else schedule
        self._response = Handoff(loop, "producer", HELD_CHUNKS, HELD_BYTES, signal, schedule)
        self._request = None  # created by read_small_body() for a body streamed to the app
        # server's thread
        self._serving = _HEAD
        self._items = []          # body chunks taken and not yet yielded, from _pos on
        self._pos = 0
        self._released = 0        # _items before this index had their credit released
        self._release_at = 0      # the index at which __next__ next releases credit
        self._head = None
        self._end = None          # the response's last batch outcome, once FINISHED was taken
        self._input = environ.get("wsgi.input")
        self._remaining = None    # request body bytes still to read; None: read until EOF
        self._input_open = False  # the app may still ask for request body
        self._input_short = False  # wsgi.input ended before CONTENT_LENGTH, or failed
        # loop
        self._phase = _STARTING
        self._task = None
        self._start = None
        self._trailers = False
        self._incoming = collections.deque()
        self._request_done = False   # the request hand-off finished (its last batch is taken)
        self._disconnected = False   # receive() answers http.disconnect once _incoming is empty
        self._reading = False        # one receive() waits on _request.take(); others on _receivers
        self._receivers = []
        self._senders = collections.deque()  # send() calls waiting their turn, in call order
        self._final = None           # items of the last body message, handed over by _hand_end
        self._early = None           # the request body read before the app started, until received
        self._task_end = None        # the hand-off a waiting close() polls; _TASK_OVER at the end
        self._ended_at = None
        self._cancel_timer = None

    # ------------------------------------------------------------------ server's thread

    def _serve(self, new):
        if new not in self._serving.allowed:
            raise RuntimeError("ASGIMiddleware: the WSGI iterable cannot go from %s to %s"
                               % (self._serving.name, new.name))
        self._serving = new

    def read_small_body(self, length):
        """Before the app starts: read a small request body whole, returned for ``begin`` (one
        hop carries it) as bytes, or as a ``_Gone`` when the input ended early or failed; or
        prepare the request hand-off to read a larger one when the app asks (None)."""
        stream = self._input
        if length is None:
            if stream is not None and self._environ.get("wsgi.input_terminated"):
                self._open_request()
                return None
            length = 0
        if length == 0 or stream is None:
            return b""
        if length <= SMALL_BODY:
            self._remaining = length
            return self._read(length)
        self._remaining = length
        self._open_request()
        return None

    def _open_request(self):
        self._request = Handoff(self._loop, "consumer", signal=self._signal, schedule=self._schedule)
        self._input_open = True

    def _read(self, size):
        """Read up to ``size`` bytes of input (all of them when the length is known), never past
        ``CONTENT_LENGTH``. A ``_Gone`` when the input ended early or failed (the caller
        finishes the request hand-off, if any, with it)."""
        stream = self._input
        remaining = self._remaining
        try:
            data = stream.read(size)
            if remaining is not None and len(data) == size:
                self._remaining = remaining - size
                return data
            if remaining is not None:
                if len(data) > remaining:
                    data = data[:remaining]  # PEP 3333: never past CONTENT_LENGTH
                if len(data) < size:
                    parts = [data]
                    got = len(data)
                    while got < size:
                        more = stream.read(size - got)
                        if not more:
                            break
                        more = more[:size - got]
                        parts.append(more)
                        got += len(more)
                    data = b"".join(parts)
                if len(data) < size:
                    self._input_done(_INPUT_SHORT, len(data))
                    return _INPUT_SHORT
                self._remaining = remaining - len(data)
        except Exception as exc:
            _report(self._environ, "reading the request body failed: %r" % (exc,), level=logging.DEBUG)
            self._input_done(_INPUT_FAILED)
            return _INPUT_FAILED
        return data

    def _input_done(self, gone, got=None):
        self._input_open = False
        self._input_short = True
        if gone is _INPUT_SHORT:
            _report(self._environ, "the request body ended after %d of %d bytes (CONTENT_LENGTH)"
                    % (self._environ_length() - self._remaining + got, self._environ_length()),
                    level=logging.DEBUG)
        # the caller finishes the request hand-off, if there is one, with ``gone``

    def _environ_length(self):
        try:
            return int(self._environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0

    def _read_pieces(self):
        """The app asked for request body: read up to READ_AHEAD pieces and hand them over
        together, with the end when the input ended."""
        request = self._request
        pieces = []
        nbytes = 0
        outcome = None
        for _ in range(READ_AHEAD):
            remaining = self._remaining
            if remaining is None:
                try:
                    data = self._input.read(READ_SIZE)
                except Exception as exc:
                    _report(self._environ, "reading the request body failed: %r" % (exc,),
                            level=logging.DEBUG)
                    self._input_done(_INPUT_FAILED)
                    outcome = _INPUT_FAILED
                    break
                if not data:
                    break  # the end of a body of unknown length
            else:
                data = self._read(min(READ_SIZE, remaining))
                if data.__class__ is _Gone:
                    outcome = data
                    break
            pieces.append(data)
            nbytes += len(data)
            if self._remaining == 0:
                break  # CONTENT_LENGTH reached
        else:
            if not request.extend(pieces, nbytes):
                self._input_open = False
            return
        self._input_open = False
        request.finish(outcome, pieces, nbytes, len(pieces))

    def _take(self, deadline=None):
        """The next response batch (None at ``deadline``), reading request body meanwhile whenever
        the app asks for it. Every wait is on the one Signal."""
        response = self._response
        request = self._request
        wait = self._signal.wait
        while True:
            batch = response.poll()
            if batch is not None:
                return batch
            if self._input_open and request.wanted():
                self._read_pieces()
                continue
            if not wait(deadline):
                return response.poll()

    def _absorb(self, batch):
        items = batch.items
        if items:
            if self._head is None and items[0].__class__ is _Head:
                self._head = items[0]
                items = items[1:]
            if self._pos < len(self._items):
                self._items.extend(items)
            else:
                self._items = items
                self._pos = self._released = 0
            # release credit when half of the chunks not yet released are yielded
            self._release_at = self._released + (len(self._items) - self._released + 1) // 2
        if batch.phase is not _STREAM_OPEN:
            self._end = (batch.outcome,)

    def respond(self):
        """Wait for the first body message (or the app's end), call ``start_response`` and return
        the WSGI iterable (ASGIMiddleware rules 1, 3 and 8)."""
        while True:
            self._absorb(self._take())
            head = self._head
            if head is None:
                if self._end is not None:
                    return self._fail_before_body()
                continue
            status, headers, sized, file = head
            if not sized or self._end is not None:
                break
        if file is not None:
            return self._serve_file(status, headers, file)
        try:
            self._start_response(status, headers)
        except BaseException:
            self.close()  # the server cannot send this response: for the app, the client went away
            raise
        if sized:
            # No release() of their credit: the stream is finished, no producer waits for room.
            chunks = self._items[self._pos:]
            self._items = []
            self._pos = 0
            self._serving = _DONE  # from HEAD, which allows it
            if self._end[0].__class__ is not _Running and self._inline_grace is None:
                # the app task is over and no loop needs driving: close() would have nothing to do
                self._end = self._head = None  # _forget()
                return chunks
            chunks = _Chunks(chunks)
            chunks._call = self
            return chunks
        self._serve(_BODY)
        return self

    def _fail_before_body(self):
        """The app ended before its first body message: a 500 through ``start_response(...,
        exc_info)`` (PEP 3333), or a 400 when the request body was short and the app ended on the
        ``http.disconnect`` it was told (rule 13; a failing ``wsgi.input`` is the same
        client-side end)."""
        (error,) = self._end
        self._serve(_DONE)
        self._forget()
        if self._input_short:
            self._start_response("400 Bad Request", list(_SHORT_HEADERS))
            return [_SHORT_BODY]
        self._start_response("500 Internal Server Error", list(_ERROR_HEADERS),
                             (type(error), error, error.__traceback__))
        return [_ERROR_BODY]

    def _serve_file(self, status, headers, f):
        self._serve(_DONE)
        try:
            self._start_response(status, headers)
            wrapper = self._environ.get("wsgi.file_wrapper")
            if wrapper is not None:
                return wrapper(f, READ_SIZE)
        except BaseException:
            f.close()
            raise
        return _FileChunks(f)

    def _release_yielded(self):
        """Give back the credit of the chunks yielded since the last release (rule 7 counts a
        chunk until it is yielded). Credit goes back in two lumps per batch taken, each a lock
        round: when half of its chunks are yielded (the held ones then reach the hand-off's
        low-water mark when the batch was all of them, and a producer waiting for room wakes)
        and with its last chunk, before the next take can wait."""
        items = self._items
        pos = self._pos
        released = self._released
        self._released = pos
        self._release_at = len(items)
        self._response.release(pos - released, sum(map(len, items[released:pos])))

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            items = self._items
            pos = self._pos
            if pos < len(items):
                chunk = items[pos]
                pos += 1
                self._pos = pos
                if pos == self._release_at:
                    self._release_yielded()
                return chunk
            if self._serving is not _BODY:
                raise StopIteration
            end = self._end
            if end is not None:
                self._serve(_DONE)
                outcome = end[0]
                if isinstance(outcome, BaseException):
                    raise outcome  # rule 2: the chunks went out, then the app's error
                raise StopIteration
            self._absorb(self._take())

    def close(self):
        """PEP 3333 ``close()``. Before the body ended the client went away: the app's pending
        ``receive()`` gets ``http.disconnect`` and its next ``send()`` raises
        ``ClientDisconnected``, and this returns at once. After it, wait for the app's remaining
        work until ``wait_time`` after the last body message, then cancel it."""
        serving = self._serving
        if serving is _CLOSED:
            return
        self._serve(_CLOSED)
        self._items = []
        self._pos = 0
        request = self._request
        if self._end is None:
            self._input_open = False
            self._response.close(_CLIENT_GONE)
            if request is not None:
                request.finish(_CLIENT_GONE)
            if self._inline_grace is None:
                self._schedule(self._on_gone)
            else:
                task_end = Handoff(self._loop, "producer", signal=self._signal, schedule=self._schedule)
                self._schedule(self._client_gone, task_end)
                self._drive_after_gone(task_end)
            return
        outcome = self._end[0]
        if isinstance(outcome, BaseException):
            # raised from __next__, the error's traceback now holds that frame, and so this call:
            # drop the frames' locals so that no cycle keeps the request alive
            _clear_frames(outcome)
            self._forget()
            return
        self._input_open = False
        if request is not None:
            request.finish(_CLIENT_GONE)
        if outcome.__class__ is _Running:  # the app task outlived its body: wait for it
            wait_time = self._wait_time
            deadline = None if wait_time is None else outcome.ended_at + max(wait_time, 0.0)
            task_end = outcome.task_end
            while task_end.poll() is None:
                if not self._signal.wait(deadline):
                    if task_end.poll() is None:
                        self._schedule(self._cancel)
                        return
                    break
        if self._inline_grace is not None:
            self._signal.settle()
        self._forget()

    def _drive_after_gone(self, task_end):
        """Inline mode: nobody else runs the loop, so let the app hear of the disconnect now (its
        ``send()`` raises, a streaming generator's ``finally`` runs): drive the loop until the
        task ends, for at most ``wait_time`` (or ``INLINE_GONE_GRACE`` when it is None). What is
        left goes on while a later request drives the loop."""
        deadline = time.monotonic() + self._inline_grace
        while task_end.poll() is None:
            if not self._signal.wait(deadline):
                return
        self._signal.settle()

    def _forget(self):
        """The app task is over: drop what the server's thread held of it (its error, its head)."""
        self._end = self._head = None

    # ------------------------------------------------------------------ loop

    def _to(self, new):
        if new not in self._phase.allowed:
            raise RuntimeError("ASGIMiddleware: a response cannot go from %s to %s"
                               % (self._phase.name, new.name))
        self._phase = new

    def begin(self, scope, early):
        """Start the app task (on the loop: the one hop of the request). ``early``: the request
        body read before (``read_small_body``), or None when it is streamed through
        ``_request``.

        On the middleware's own loop (Python 3.12 and later) the task starts eagerly: its first
        step runs here, in this callback, instead of in the loop's next iteration (a small
        request then takes one pass of the loop fewer). It is still a task of its own: the app
        sees ``asyncio.current_task()``, its context is a copy, and what it schedules runs
        later, as usual. A loop passed as ``loop=`` keeps its own task factory."""
        self._early = early
        try:
            coro = self._app(scope, self.receive, self.send)
            if _EAGER and self._owner._user_loop is None:
                self._task = task = asyncio.Task(coro, loop=self._loop, eager_start=True)
            else:
                self._task = task = self._loop.create_task(coro)
        except Exception as exc:
            self._ended(exc)
            return
        except BaseException as exc:
            # SystemExit or KeyboardInterrupt out of the eager first step: the task ended with
            # it, before its done callback was added. End the call as that callback would (a
            # 500), then let the loop's runner see it, as it sees one out of any task step.
            self._ended(exc)
            raise
        if task.done():
            # the app ran to its end in the eager first step: end the call now, not a pass later
            self._task_done(task)
            return
        task.add_done_callback(self._task_done)
        if self._final is not None:
            self._hand_end(True)  # the body ended in the eager first step; the task runs on

    def begin_inline(self, scope, early):
        """Inline mode's ``begin``, called on the serving thread, which owns the loop (not running
        now), so that the task's first step runs in the loop's first iteration instead of the one
        after a scheduled ``begin``. The app is called inside the task, as ``begin`` calls it on
        the running loop and in a copy of the serving thread's context."""
        self._early = early
        self._task = task = self._loop.create_task(self._call_app(scope))
        task.add_done_callback(self._task_done)

    async def _call_app(self, scope):
        await self._app(scope, self.receive, self.send)

    def _task_done(self, task):
        self._task = None
        if task.cancelled():
            error = None if self._phase in _OVER else RuntimeError("the ASGI app task was cancelled")
        else:
            error = task.exception()
        self._ended(error)

    def _ended(self, error):
        if self._phase not in _OVER and self._response.phase is _STREAM_CLOSED:
            self._on_gone()  # close() ran; its scheduled _on_gone has not yet
        timer = self._cancel_timer
        if timer is not None:
            timer.cancel()
            self._cancel_timer = None
        phase = self._phase
        if phase is _ENDED:
            if error is not None:
                _report(self._environ, "the ASGI app raised an exception after its response", error)
        elif phase is _GONE:
            if error is not None:
                if isinstance(error, OSError) or _caused_by_disconnect(error):
                    _report(self._environ, "the ASGI app ended on the client's disconnect: %r" % (error,),
                            level=logging.DEBUG)
                else:
                    _report(self._environ, "the ASGI app raised an exception", error)
        else:
            if error is None:
                error = RuntimeError("the ASGI app returned without %s" % (
                    "sending http.response.start" if phase is _STARTING
                    else "completing its response body"))
                level = logging.DEBUG if self._disconnected else logging.ERROR
                _report(self._environ, str(error) + (
                    " (it was told http.disconnect)" if self._disconnected else ""), level=level)
            elif self._disconnected and phase is not _STREAMING:
                _report(self._environ, "the ASGI app ended on http.disconnect: %r" % (error,),
                        level=logging.DEBUG)
            else:
                _report(self._environ, "the ASGI app raised an exception", error)
            self._to(_FAILED)
            self._response.finish(error)
        if self._receivers:
            self._wake_receivers()
        task_end = self._task_end
        self._task_end = _TASK_OVER
        if task_end is not None:
            task_end.finish()
        if error is not None:
            _clear_frames(error)
        if phase is _ENDED:
            # last: the WSGI thread, woken by it, does not wait for the task's end (it is this)
            self._hand_end(False)

    def _cancel(self):
        task = self._task
        if task is not None and not task.done():
            logger.debug("%s: wait_time passed; cancelling the ASGI app task", _describe(self._environ))
            task.cancel()

    def _on_gone(self):
        """The server closed the response before its end: scheduled by ``close()``, or seen
        first through the closed hand-off (a ``put`` refused, or at the task's end)."""
        if self._phase not in _OVER:
            self._to(_GONE)
        self._disconnected = True
        if self._receivers:
            self._wake_receivers()
        if self._wait_time is not None and self._task is not None and self._cancel_timer is None:
            self._cancel_timer = self._loop.call_later(max(self._wait_time, 0.0), self._cancel)

    def _client_gone(self, task_end):
        """Inline mode's ``close()`` before the body's end: ``_on_gone``, and ``task_end`` to be
        finished when the app task is done (at once if it is)."""
        if self._task_end is _TASK_OVER:
            task_end.finish()
        else:
            self._task_end = task_end  # replaces one handed with a response the thread never took
        self._on_gone()

    def _wake_receivers(self):
        """Resolve the waiting ``receive()`` calls (callers check ``_receivers`` first: the
        call is skipped on the usual path, where nobody waits)."""
        waiters = self._receivers
        self._receivers = []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _wait_receivers(self):
        fut = self._loop.create_future()
        self._receivers.append(fut)
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()
                if fut in self._receivers:
                    self._receivers.remove(fut)

    async def receive(self):
        """ASGI ``receive``: the request body in pieces; then ``http.disconnect`` once the response
        is complete or the client went away (ASGI HTTP spec, "Disconnected - receive event")."""
        early = self._early
        if early is not None:  # the whole body, read before the app started
            self._early = None
            self._request_done = True
            if early.__class__ is bytes:
                return {"type": "http.request", "body": early, "more_body": False}
            self._disconnected = True
        while True:
            incoming = self._incoming
            if incoming:
                message = incoming.popleft()
                if not incoming and message["more_body"]:
                    self._request.want()  # read ahead while the app works on this piece
                return message
            if self._disconnected:
                return _DISCONNECT
            if self._request_done or self._reading:
                if self._request_done and self._phase in _OVER:
                    return _DISCONNECT
                await self._wait_receivers()
                continue
            self._reading = True
            try:
                request = self._request
                if request.phase is _STREAM_OPEN:
                    request.want()
                batch = await request.take()
            finally:
                self._reading = False
                if self._receivers:
                    self._wake_receivers()
            for piece in batch.items:
                incoming.append({"type": "http.request", "body": piece, "more_body": True})
            if batch.phase is not _STREAM_OPEN:
                self._request_done = True
                if batch.outcome is None:
                    if incoming:
                        incoming[-1]["more_body"] = False
                    else:
                        incoming.append({"type": "http.request", "body": b"", "more_body": False})
                else:
                    self._disconnected = True

    async def _wait_turn(self, room):
        """Wait until every earlier ``send()`` has handed its message over (call order), and
        then, with ``room``, until the response hand-off has room (backpressure, rule 7)."""
        senders = self._senders
        fut = self._loop.create_future()
        senders.append(fut)
        try:
            if senders[0] is not fut:
                await fut
            if room:
                response = self._response
                while not response.has_room():
                    await response.room()
        finally:
            if senders and senders[0] is fut:
                senders.popleft()
                if senders and not senders[0].done():
                    senders[0].set_result(None)
            else:
                senders.remove(fut)

    def _hand_end(self, running):
        """Hand over the last body message and finish the response hand-off with its time, and
        (the app task still ``running``) the hand-off the loop finishes at the task's end."""
        final = self._final
        if final is None:
            return
        self._final = None
        if running:
            task_end = self._task_end
            if task_end is None:
                task_end = self._task_end = Handoff(self._loop, "producer", signal=self._signal,
                                                    schedule=self._schedule)
            outcome = _Running(self._ended_at, task_end)
        else:
            outcome = self._ended_at
        # The last message's items go with the end, in one lock round: a head, a body, or both.
        body = final[-1] if final else None
        if body.__class__ is bytes:
            taken = self._response.finish(outcome, final, len(body), 1)
        else:
            taken = self._response.finish(outcome, final)
        if not taken and final and final[0].__class__ is _Head:
            status, headers, sized, file = final[0]
            if file is not None:  # a pathsend's, opened by send(): nobody will serve it
                file.close()

    def _hand_end_unless_done(self):
        """Deferred by one loop turn after the last body message: if the task finished meanwhile,
        its done callback hands the end over, so that the WSGI thread wakes once for both."""
        task = self._task
        if task is None or not task.done():
            self._hand_end(task is not None)

    def _refused(self, kind):
        phase = self._phase
        if phase is _STARTING:
            return RuntimeError("ASGI %s sent before http.response.start" % kind)
        if phase is _STREAMING and kind == "http.response.pathsend":
            return RuntimeError("ASGI http.response.pathsend sent after http.response.body")
        if kind == "http.response.start":
            return RuntimeError("ASGI http.response.start sent twice")
        return RuntimeError("ASGI %s sent after the response body was complete" % kind)

    async def send(self, message):
        """ASGI ``send``: response messages go to the WSGI thread through the bounded hand-off.
        Each move of ``_phase`` here follows the check that ``_ALLOWED`` permits it, so it is an
        assignment rather than a ``_to()`` call (a call per message)."""
        phase = self._phase
        if self._disconnected and phase not in _OVER or phase is _GONE:
            raise ClientDisconnected("the client disconnected")
        try:
            kind = message["type"]
        except (KeyError, TypeError):
            raise ValueError("an ASGI message must be a dict with a 'type' key, got %r" % (message,)) from None
        if kind == "http.response.body":
            if phase is not _STREAMING and phase is not _STARTED:
                raise self._refused(kind)
            body = message.get("body", b"")
            if type(body) is not bytes:
                if not isinstance(body, (bytes, bytearray, memoryview)):
                    raise TypeError("ASGI http.response.body 'body' must be bytes, got %s"
                                    % type(body).__name__)
                body = bytes(body)
            response = self._response
            if message.get("more_body", False):
                if phase is _STARTED:
                    self._phase = _STREAMING
                    status, headers = self._start
                    response.put(_Head((status, headers, False, None)), 0, 0)
                if body:
                    # has_room()'s test, without its call (a call per chunk): a closed hand-off
                    # goes through _wait_turn, whose has_room() lets put() report the close
                    if (self._senders or response.held_items >= response.max_items
                            or response.held_bytes >= response.max_bytes):
                        await self._wait_turn(True)
                    if not response.put(body, len(body)):
                        self._on_gone()
                        raise ClientDisconnected("the client disconnected")
                    if self._disconnected:
                        raise ClientDisconnected("the client disconnected")
                return
            self._ended_at = time.monotonic()
            self._phase = _ENDED
            if self._receivers:
                self._wake_receivers()
            if phase is _STARTED:
                status, headers = self._start
                final = [_Head((status, headers, True, None))]
            else:
                final = []
            if body:
                final.append(body)
            if self._senders:
                await self._wait_turn(False)
            self._final = final
            if self._task is not None:
                self._loop.call_soon(self._hand_end_unless_done)
            # else this is the task's eager first step: begin() hands the end over after it
            return
        if kind == "http.response.start":
            if phase is not _STARTING:
                raise self._refused(kind)
            status = status_line(message.get("status"))
            headers = decode_response_headers(message.get("headers", ()))
            if message.get("trailers"):
                self._trailers = True
                self._owner._warn_trailers(self._environ)
            self._start = (status, headers)
            self._phase = _STARTED
            return
        if kind == "http.response.pathsend":
            if phase is not _STARTED:
                raise self._refused(kind)
            path = message.get("path")
            if not isinstance(path, str):
                raise TypeError("ASGI http.response.pathsend 'path' must be a str, got %s"
                                % type(path).__name__)
            f = open(path, "rb")  # rule 8: opened before send() returns; OSError goes to the app
            self._ended_at = time.monotonic()
            self._phase = _ENDED
            if self._receivers:
                self._wake_receivers()
            status, headers = self._start
            self._final = [_Head((status, headers, True, f))]
            if self._task is not None:  # else begin() hands it over after the eager first step
                self._loop.call_soon(self._hand_end_unless_done)
            if self._wait_time is not None:
                self._cancel_timer = self._loop.call_later(max(self._wait_time, 0.0), self._cancel)
            return
        if kind == "http.response.trailers":
            if self._trailers and phase is _ENDED:
                return  # rule 10: accepted and dropped (a WSGI server cannot send trailers)
            raise RuntimeError("ASGI http.response.trailers sent %s" % (
                "before the response body ended" if self._trailers else
                "without \"trailers\": True in http.response.start"))
        raise ValueError("unexpected ASGI message type %r on an HTTP connection; expected "
                         "http.response.start, http.response.body or http.response.pathsend" % (kind,))


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


_forked_runtimes = []  # a parent's runtime copied into a forked child: kept, never touched


class ASGIMiddleware:
    """A WSGI application (PEP 3333) that serves the ASGI 3 application ``app``.

    ``wait_time``: seconds after the last response body message (or the client's disconnect)
    to let the app's remaining work (background tasks) run before cancelling it; None lets it
    finish. ``loop``: an event loop, already running in another thread, to run the app on; by
    default the middleware starts its own, in a daemon thread, at the first request in each
    process. ``inline=True``: no loop thread; the thread serving a request drives this process's
    loop itself, for servers that serve one request at a time per process (gunicorn sync workers,
    uWSGI or mod_wsgi without threads, Passenger, serverless adapters); a server whose environ
    says ``wsgi.multithread`` is refused at its first request.

    The app's lifespan startup runs before the first request is served (bounded by
    ``a2wsgi._runtime.STARTUP_TIMEOUT``), and its shutdown at interpreter exit or on ``close()``.
    """

    def __init__(self, app, wait_time=None, loop=None, inline=False):
        check_asgi_app(app)
        if inline and loop is not None:
            raise TypeError("ASGIMiddleware takes loop= or inline=True, not both: inline=True drives "
                            "a loop of its own on the serving thread")
        self.app = app
        self.inline = bool(inline)
        self.wait_time = wait_time
        self._user_loop = loop
        self._runtime = None
        self._finalizer = None
        self._lock = threading.Lock()
        self._trailers_warned = False

    @property
    def loop(self):
        """The event loop the app runs on in this process (None before the first request)."""
        if self._user_loop is not None:
            return self._user_loop
        runtime = self._runtime
        return runtime.loop if runtime is not None and runtime.pid == os.getpid() else None

    def _warn_trailers(self, environ):
        """Rule 10: one warning per middleware (called on the loop)."""
        if not self._trailers_warned:
            self._trailers_warned = True
            _report(environ, "the ASGI app asks for response trailers (\"trailers\": True), which a "
                    "WSGI server cannot send: the body is delivered and http.response.trailers is "
                    "dropped (warned once)", level=logging.WARNING)

    def _start_runtime(self):
        """This process's runtime, its lifespan startup decided (waited for without the lock).
        ``python -m a2wsgi serve`` calls it to run startup before serving."""
        runtime = self._create_runtime()
        runtime.wait_started()
        return runtime

    def _create_runtime(self):
        """Create this process's runtime and begin lifespan startup; the lock is held only for
        that, never while startup runs."""
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
            if self.inline:
                runtime = _InlineRuntime(self.app)
            else:
                runtime = _Runtime(self.app, self._user_loop)
            finalizer = weakref.finalize(self, runtime.shutdown)
            try:
                runtime.begin()
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
        if self.inline and environ.get("wsgi.multithread"):
            raise RuntimeError("ASGIMiddleware(app, inline=True) serves one request at a time per "
                               "process, but this server calls it from several threads "
                               "(wsgi.multithread is true): drop inline=True, or run the server "
                               "with one thread per process")
        runtime = self._runtime
        if runtime is None or runtime.pid != os.getpid():
            runtime = self._create_runtime()
        startup = runtime.startup
        if startup is not Startup.COMPLETE and startup is not Startup.UNSUPPORTED:
            startup = runtime.wait_started()
            if startup is Startup.FAILED:
                raise RuntimeError("the ASGI app's lifespan startup failed, so it cannot serve requests: %s"
                                   % (runtime.message or "(no message)"))
            if startup is Startup.TIMED_OUT:
                _report(environ, "not served: %s" % runtime.message)
                start_response("500 Internal Server Error", list(_ERROR_HEADERS))
                return [_ERROR_BODY]
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
        loop = runtime.loop
        if self.inline:
            grace = INLINE_GONE_GRACE if self.wait_time is None else max(self.wait_time, 0.0)
            call = _ASGICall(self, loop, environ, start_response, loop.call_soon, runtime.signal(), grace)
            call.begin_inline(scope, call.read_small_body(length))
            return call.respond()
        call = _ASGICall(self, loop, environ, start_response, signal=_thread_signal())
        call._schedule(call.begin, scope, call.read_small_body(length))
        return call.respond()
