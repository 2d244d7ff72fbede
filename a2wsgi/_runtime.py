"""The event loop an ASGI app runs on under ``ASGIMiddleware`` and the app's lifespan (ASGI
lifespan spec 2.0), one ``_Runtime`` per middleware and process.

Lifespan startup is decided once, by the first of:

- ``lifespan.startup.complete``: requests are served, and shutdown is owed at the end;
- ``lifespan.startup.failed``: requests are refused with the app's message;
- the app raising, returning, or sending any other message during startup, from any of its tasks:
  lifespan is unsupported, requests are served at once (the lifespan task is cancelled);
- ``STARTUP_TIMEOUT`` passing: every waiting and later request fails fast with a 500.

No request waits for startup while holding a lock that other requests need: the middleware's lock
covers only creating the runtime; the wait is on ``wait_started`` with a deadline.
"""

import asyncio
import concurrent.futures
import enum
import logging
import os
import threading
import time

__all__ = ("STARTUP_TIMEOUT", "Startup", "_Runtime", "_InlineRuntime", "LoopSignal")

logger = logging.getLogger("a2wsgi")

#: Seconds lifespan startup may take before requests fail with a 500 (hypercorn's
#: ``startup_timeout`` has the same default).
STARTUP_TIMEOUT = 60.0

_LIFESPAN_SCOPE_ASGI = {"version": "3.0", "spec_version": "2.0"}


def _wind_down(loop):
    """Before closing our own loop: cancel what the app left running (5 s to react), then close
    its async generators, so that their ``finally`` runs."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=5))
    loop.run_until_complete(loop.shutdown_asyncgens())


class Startup(enum.Enum):
    """What lifespan startup came to; PENDING until decided, then fixed."""

    PENDING = "pending"
    COMPLETE = "complete"        # the app sent lifespan.startup.complete
    FAILED = "failed"            # the app sent lifespan.startup.failed
    UNSUPPORTED = "unsupported"  # the app raised, returned or sent another message
    TIMED_OUT = "timed out"      # STARTUP_TIMEOUT passed first


class _Runtime:
    """The event loop that runs the app in one process (its own daemon thread, or the user's
    running loop) and the app's lifespan. Holds no reference to the middleware, so that the
    middleware's finalizer can shut it down."""

    def __init__(self, app, loop):
        self.pid = os.getpid()
        self.app = app
        self.state = {}
        self.startup = Startup.PENDING
        self.message = ""              # the app's startup.failed message, or what went wrong
        self.thread = None
        self.closed = False
        self._decided = threading.Event()
        self._decided_hook = None      # inline mode: stops the loop its waiter drives
        self._decide_lock = threading.Lock()
        self._deadline = None
        self._lifespan_task = None     # a strong reference: asyncio keeps only a weak one
        self._inbox = []
        self._inbox_waiter = None
        self._shutdown_posted = False
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
            _wind_down(loop)
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    @property
    def failure(self):
        """Why requests cannot be served (startup failed or timed out), or None."""
        if self.startup is Startup.FAILED or self.startup is Startup.TIMED_OUT:
            return self.message or "(no message)"
        return None

    # ---- startup --------------------------------------------------------------------------------

    def begin(self):
        """Start lifespan startup on the loop; does not wait (see ``wait_started``)."""
        if self.thread is None and not self.loop.is_running():
            raise RuntimeError("the event loop passed to ASGIMiddleware(loop=...) is not running; start "
                               "it (loop.run_forever() in a thread) before the first request")
        self._deadline = time.monotonic() + STARTUP_TIMEOUT
        self._inbox.append({"type": "lifespan.startup"})
        self.loop.call_soon_threadsafe(self._start_lifespan)

    def wait_started(self):
        """Block until startup is decided or its deadline passed; return the decision."""
        if self.startup is Startup.PENDING:
            timeout = self._deadline - time.monotonic()
            if not (timeout > 0 and self._decided.wait(timeout)):
                self._decide(Startup.TIMED_OUT, "ASGI lifespan startup did not complete within %g s "
                             "(a2wsgi._runtime.STARTUP_TIMEOUT)" % STARTUP_TIMEOUT)
        return self.startup

    def _decide(self, outcome, message=""):
        """Fix the startup outcome (the first decision wins); True if this call decided it."""
        with self._decide_lock:
            if self.startup is not Startup.PENDING:
                return False
            self.message = message
            self.startup = outcome
        self._decided.set()
        hook = self._decided_hook
        if hook is not None:
            hook()
        if outcome is Startup.FAILED:
            logger.error("ASGI lifespan startup failed: %s", message or "(no message)")
        elif outcome is Startup.TIMED_OUT:
            logger.error("%s; every request fails with a 500", message)
        elif outcome is Startup.UNSUPPORTED:
            logger.info("ASGI lifespan appears unsupported by the app (%s); serving without it", message)
        return True

    def _start_lifespan(self):
        scope = {"type": "lifespan", "asgi": dict(_LIFESPAN_SCOPE_ASGI), "state": self.state}
        self._lifespan_task = self.loop.create_task(self._lifespan_main(scope))

    async def _lifespan_main(self, scope):
        try:
            await self.app(scope, self._lifespan_receive, self._lifespan_send)
        except asyncio.CancelledError:
            if self.startup is not Startup.UNSUPPORTED:
                raise
        except Exception as exc:
            if self._decide(Startup.UNSUPPORTED, "it raised %r" % (exc,)):
                pass
            elif self._shutdown_posted:
                logger.error("ASGI lifespan shutdown raised an exception", exc_info=True)
            else:
                logger.error("ASGI lifespan raised an exception", exc_info=True)
        finally:
            self._decide(Startup.UNSUPPORTED, "it returned without sending lifespan.startup.complete")
            if not self._shutdown.done():
                self._shutdown.set_result(("returned", ""))

    async def _lifespan_receive(self):
        while not self._inbox:
            fut = self._inbox_waiter = self.loop.create_future()
            try:
                await fut
            finally:
                self._inbox_waiter = None
        return self._inbox.pop(0)

    async def _lifespan_send(self, message):
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "lifespan.startup.complete" or kind == "lifespan.startup.failed":
            complete = kind == "lifespan.startup.complete"
            if not self._decide(Startup.COMPLETE if complete else Startup.FAILED, message.get("message", "")):
                raise RuntimeError("ASGI %s sent, but startup is already over (%s)"
                                   % (kind, self.startup.value))
        elif kind == "lifespan.shutdown.complete" or kind == "lifespan.shutdown.failed":
            if not self._shutdown.done():
                self._shutdown.set_result(("complete" if kind.endswith("complete") else "failed",
                                           message.get("message", "")))
        else:
            error = ValueError("unexpected ASGI message %r on the lifespan connection; expected "
                               "lifespan.startup.complete/failed or lifespan.shutdown.complete/failed"
                               % (message,))
            if self._decide(Startup.UNSUPPORTED, "it sent %r during startup" % (kind,)):
                task = self._lifespan_task
                if task is not None and task is not asyncio.current_task():
                    task.cancel()
            raise error

    # ---- shutdown -------------------------------------------------------------------------------

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
        if self.startup is Startup.COMPLETE and loop.is_running():
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


# ---- inline mode --------------------------------------------------------------------------------


class LoopSignal:
    """The ``Signal`` of a thread that drives the event loop itself (``inline=True``): ``wait()``
    runs the loop until ``set()`` is called (from a callback the loop runs) or the deadline
    passes. One thread only: the loop is never touched from anywhere else."""

    __slots__ = ("_loop", "_set", "_waiting")

    def __init__(self, loop):
        self._loop = loop
        self._set = False
        self._waiting = False

    def set(self):
        self._set = True
        if self._waiting:
            self._loop.stop()

    def wait(self, deadline=None):
        """Run the loop until ``set()``; False if ``deadline`` (a ``time.monotonic()`` instant,
        the clock of ``loop.time()``) came first."""
        if not self._set:
            loop = self._loop
            timer = None if deadline is None else loop.call_at(deadline, loop.stop)
            self._waiting = True
            try:
                while not self._set:
                    loop.run_forever()
                    if deadline is not None and not self._set and time.monotonic() >= deadline:
                        return False
            finally:
                self._waiting = False
                if timer is not None:
                    timer.cancel()
        self._set = False
        return True

    def settle(self, passes=9):
        """Run the loop for up to ``passes`` iterations without waiting, so that what the last
        callbacks scheduled runs now: an async generator's finalizer (its ``finally``) creates a
        task, which takes an iteration to start and one to run. Stops at the first iteration that
        leaves nothing ready to run (asyncio's ready queue, where the loop has one), and does not
        start the loop when nothing is ready or scheduled: I/O and later timers wait for the
        next request, as they do between requests."""
        loop = self._loop
        ready = getattr(loop, "_ready", None)
        if ready is not None and not ready and not getattr(loop, "_scheduled", True):
            return
        left = [passes]

        def step():
            left[0] -= 1
            if left[0] <= 0 or (ready is not None and not ready):
                loop.stop()
            else:
                loop.call_soon(step)

        loop.call_soon(step)
        loop.run_forever()


class _InlineRuntime(_Runtime):
    """``ASGIMiddleware(app, inline=True)``: the loop belongs to this process and runs only while
    the thread serving a request waits (``LoopSignal``): no loop thread, no hop. Tasks the app
    leaves running after its response advance only while a later request drives the loop."""

    def __init__(self, app):
        super().__init__(app, asyncio.new_event_loop())
        self.thread = None

    def signal(self):
        """A new ``LoopSignal`` for one request (or for lifespan startup and shutdown)."""
        return LoopSignal(self.loop)

    def begin(self):
        self._deadline = time.monotonic() + STARTUP_TIMEOUT
        self._inbox.append({"type": "lifespan.startup"})
        self.loop.call_soon(self._start_lifespan)

    def wait_started(self):
        if self.startup is Startup.PENDING:
            signal = self.signal()
            self._decided_hook = signal.set
            try:
                while self.startup is Startup.PENDING:
                    if not signal.wait(self._deadline):
                        break
            finally:
                self._decided_hook = None
        return super().wait_started()

    def shutdown(self, timeout=None):
        """Run lifespan shutdown on this thread, cancel what the app left running, close the
        loop. Does nothing in a forked child (the loop belongs to the parent)."""
        if self.closed or self.pid != os.getpid():
            return
        self.closed = True
        loop = self.loop
        if loop.is_closed() or loop.is_running():
            return
        try:
            if self.startup is Startup.COMPLETE:
                self._post_shutdown()
                waiting = asyncio.wrap_future(self._shutdown, loop=loop)
                try:
                    outcome, message = loop.run_until_complete(asyncio.wait_for(waiting, timeout))
                except asyncio.TimeoutError:
                    logger.error("ASGI lifespan shutdown did not finish within %s s", timeout)
                else:
                    if outcome == "failed":
                        logger.error("ASGI lifespan shutdown failed: %s", message or "(no message)")
            _wind_down(loop)
        finally:
            loop.close()
