"""The hand-off between an asyncio event loop and one thread: a bounded stream of items, taken in
batches, in either direction.

Both middlewares move four streams across the loop/thread boundary (in each direction a response
body and a request body); each is one ``Handoff``. One side produces (``put``, ``finish``), the
other consumes (``poll``/``take``, ``release``, ``close``); one of the two runs on the loop, the
other on a thread. The loop side waits on futures, any number of them at once; the thread side
waits on a ``Signal``, which a thread waiting on two hand-offs shares between them.

Invariants (each has a test in ``tests/test_handoff.py``):

1. Every item put before ``close()`` is taken exactly once, in the order it was put.
2. Items put and not yet released never exceed ``max_items``/``max_bytes``, except by the one
   item whose ``put()`` crossed the limit: a producer that waits for ``has_room()`` before each
   ``put()`` holds at most the limit plus that one.
3. A side is woken only on a transition it waits for: ``put``/``finish`` wake a waiting consumer;
   a ``release`` that brings the held items down to half the limits (the low-water mark, so that
   the producer works while the consumer drains), ``want`` and ``close`` wake a waiting producer. The loop is
   woken by at most one ``schedule`` call per transition: callbacks are coalesced while one is
   pending.
4. Waiting flags and the stream's state change under one lock, so a wake-up can be spurious but
   is never lost: a side registers as waiting in the same critical section in which it found
   nothing to do.
5. ``finish`` and ``close`` are idempotent and terminal, and wake every waiter on both sides;
   ``close`` after ``finish`` still closes (the consumer left before taking everything), and
   ``finish`` after ``close`` is still recorded, for a loop consumer that left and waits in
   ``finished()`` until the producer stopped.
6. Waits on the thread side take a deadline (a ``time.monotonic()`` instant), not a timeout.
7. No code outside this module runs with the lock held.

Two reads skip the lock, each safe for the one side that makes it: the producer's ``has_room``
(only the producer raises the counts, only the consumer ends the phase) and the consumer's
first check in ``want`` (only the producer clears the request, and then answers it). A
producer that puts an item per message may test ``held_items >= max_items`` (and the bytes)
itself, without the call, and go to ``has_room``/``room``/``wait_room`` only then: the same
read, and those see a closed stream as room, so that ``put()`` reports the close.

Each method belongs to one face and must be called from that face's side: the producer's
(``put``, ``extend``, ``has_room``, ``room``/``wait_room``, ``finish``, ``wanted``, ``demand``/
``wait_demand``) or the consumer's (``poll``, ``take``/``take_wait``, ``release``, ``want``,
``close``, ``finished``).
"""

import enum
import threading
import time

__all__ = ("Phase", "Batch", "Signal", "Handoff")

_INFINITE = float("inf")

#: Called as ``hook(handoff, point)`` at each point where the other side may run, when set: right
#: after the lock is released by ``put``, ``finish``, ``release``, ``want`` and ``close`` (point
#: named after the method), and right before a thread waits on its signal (``"thread-wait"``).
#: Tests use it to force an interleaving; it is None in production.
hook = None


class Phase(enum.Enum):
    """Where a stream is: items may still come (``OPEN``), the producer ended it (``FINISHED``),
    or the consumer left (``CLOSED``)."""

    OPEN = "open"
    FINISHED = "finished"
    CLOSED = "closed"


_OPEN = Phase.OPEN
_FINISHED = Phase.FINISHED
_CLOSED = Phase.CLOSED


class Batch:
    """What a consumer takes: ``items`` in put order with their total ``count`` and ``nbytes``
    (as given to ``put``), the stream's ``phase`` when they were taken, and ``outcome``: the
    value given to ``finish()`` (``FINISHED``; None means a clean end) or to ``close()``
    (``CLOSED``). A ``FINISHED`` batch holds the last items; a ``CLOSED`` one holds none."""

    __slots__ = ("items", "count", "nbytes", "phase", "outcome")

    def __init__(self, items, count, nbytes, phase, outcome):
        self.items = items
        self.count = count
        self.nbytes = nbytes
        self.phase = phase
        self.outcome = outcome

    def __repr__(self):
        return "Batch(%d items, %d bytes, %s, %r)" % (len(self.items), self.nbytes, self.phase.name,
                                                    self.outcome)


class Signal:
    """Wakes the one thread that waits. A ``set()`` before ``wait()`` is kept as a permit, so
    that a wake-up can be spurious but never lost. A lock used as a binary semaphore: cheaper
    than ``threading.Event``, which allocates a lock per wait."""

    __slots__ = ("_lock",)

    def __init__(self):
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self):
        try:
            self._lock.release()
        except RuntimeError:  # already set: one permit is enough
            pass

    def wait(self, deadline=None):
        """Wait for ``set()``; False if ``deadline`` (a ``time.monotonic()`` instant) came first."""
        if deadline is None:
            return self._lock.acquire()
        timeout = deadline - time.monotonic()
        if timeout <= 0:
            return self._lock.acquire(False)
        return self._lock.acquire(True, timeout)


def _passed(deadline):
    """Whether ``deadline`` passed: checked after each wake-up, since a signal that keeps being
    set (spuriously, by a hand-off sharing it) would otherwise keep a wait going past it."""
    return deadline is not None and time.monotonic() >= deadline


def _resolve_all(futures):
    for fut in futures:
        if not fut.done():
            fut.set_result(None)


# The lock is taken with ``acquire()`` and given back in a ``finally``, not with ``with``: the
# ``with`` statement looks up and binds ``__enter__``/``__exit__`` and calls ``__exit__`` with
# three arguments each time, about 2.5 times the cost of the two calls (callgrind), and the
# hand-off takes its lock several times per request.


class Handoff:
    """A bounded stream of items from a producer to a consumer, one of them on ``loop``.

    ``loop_is`` says which side runs on the loop: ``"producer"`` or ``"consumer"``. The thread
    side waits on ``signal`` (a new ``Signal``, made on first use, unless one is shared).
    ``schedule(callback, *args)`` runs a callback on the loop from the thread side:
    ``loop.call_soon_threadsafe`` unless given (a thread that drives the loop itself passes
    ``loop.call_soon``). ``max_items``/``max_bytes`` are the limits (read-only; infinite when
    not given), ``held_items``/``held_bytes`` what is put and not yet released.
    """

    __slots__ = (
        "_loop", "_loop_produces", "max_items", "max_bytes", "_low_items", "_low_bytes", "_signal", "_schedule", "_lock",
        "_items", "held_items", "held_bytes", "_taken_items", "_taken_bytes", "phase", "_outcome", "_producer_ended",
        "_wanted", "_thread_waiting", "_loop_waiters", "waits",
    )

    def __init__(self, loop, loop_is, max_items=None, max_bytes=None, signal=None, schedule=None):
        if loop_is == "producer":
            self._loop_produces = True
        elif loop_is == "consumer":
            self._loop_produces = False
        else:
            raise ValueError("loop_is must be 'producer' or 'consumer', got %r" % (loop_is,))
        self._loop = loop
        if max_items is None:
            self.max_items = self._low_items = _INFINITE
        else:
            self.max_items = max_items
            self._low_items = max_items // 2
        if max_bytes is None:
            self.max_bytes = self._low_bytes = _INFINITE
        else:
            self.max_bytes = max_bytes
            self._low_bytes = max_bytes // 2
        self._signal = signal
        self._schedule = loop.call_soon_threadsafe if schedule is None else schedule
        self._lock = threading.Lock()
        self._items = []          # put and not yet taken
        self.held_items = 0       # put and not yet released (counts and bytes as given to put())
        self.held_bytes = 0
        self._taken_items = 0     # of those, the ones taken (a batch is the held ones not taken)
        self._taken_bytes = 0
        self.phase = _OPEN
        self._outcome = None
        self._producer_ended = False  # finish() was called, before or after close()
        self._wanted = False      # the consumer asked for more (pull mode)
        self._thread_waiting = False
        self._loop_waiters = []   # futures of loop-side waits not yet scheduled to be woken
        self.waits = 0            # how many times a loop consumer's take() had to wait

    @property
    def signal(self):
        """The ``Signal`` the thread side waits on. Made on first use, under the lock, so that
        a hand-off whose thread never waits (a small W->A response) costs no lock for it."""
        signal = self._signal
        if signal is None:
            lock = self._lock
            lock.acquire()
            try:
                signal = self._signal
                if signal is None:
                    signal = self._signal = Signal()
            finally:
                lock.release()
        return signal

    def __repr__(self):
        return "<Handoff %s, %d items / %d bytes held, loop %s>" % (
            self.phase.name, self.held_items, self.held_bytes,
            "produces" if self._loop_produces else "consumes")

    # ---- waking the other side ------------------------------------------------------------------
    # Each ``_wake_*_locked`` runs with the lock held and says whether the caller must act after
    # releasing it: ``signal.set()`` for the thread; for the loop, the waiters it took out of
    # ``_loop_waiters``, for ``schedule(_resolve_all, waiters)``. Taking them out is what
    # coalesces loop wake-ups: until one of them waits again, a transition finds nobody to wake.
    # ``finish`` and ``take`` do the same inline (taken once per request); ``put`` tests first
    # whether anybody waits at all, in one expression, and calls a helper only then.

    def _wake_thread_locked(self):
        if self._thread_waiting:
            self._thread_waiting = False
            return True
        return False

    def _wake_loop_locked(self):
        waiters = self._loop_waiters
        if waiters:
            self._loop_waiters = []
            return waiters
        return None

    def _schedule_loop_wake(self, waiters):
        """Resolve ``waiters`` on the loop (each re-checks what it waits for)."""
        try:
            self._schedule(_resolve_all, waiters)
        except RuntimeError:  # the loop is closed: nobody waits on it any more
            pass

    async def _loop_wait(self, ready):
        """On the loop: wait until ``ready()`` (called with the lock held) is true."""
        lock = self._lock
        while True:
            lock.acquire()
            try:
                if ready():
                    return
                fut = self._loop.create_future()
                self._loop_waiters.append(fut)
            finally:
                lock.release()
            try:
                await fut
            except BaseException:
                lock.acquire()
                try:
                    if fut in self._loop_waiters:
                        self._loop_waiters.remove(fut)
                finally:
                    lock.release()
                raise

    def _thread_wait(self, ready, deadline):
        """On the thread: wait until ``ready()`` (called with the lock held) is true; False if
        ``deadline`` came first."""
        lock = self._lock
        while True:
            lock.acquire()
            try:
                if ready():
                    self._thread_waiting = False
                    return True
                self._thread_waiting = True
            finally:
                lock.release()
            if hook is not None:
                hook(self, "thread-wait")
            if not self.signal.wait(deadline) or _passed(deadline):
                lock.acquire()
                try:
                    self._thread_waiting = False
                    return ready()
                finally:
                    lock.release()

    # ---- producer face -------------------------------------------------------------------------

    def put(self, item, nbytes=0, count=1):
        """Append ``item`` (never blocks). False, and the item is dropped, once the consumer
        closed the stream. A put after ``finish()`` is a bug of the caller."""
        lock = self._lock
        lock.acquire()
        try:
            if self.phase is not _OPEN:
                if self.phase is _CLOSED:
                    return False
                raise RuntimeError("Handoff.put() after finish()")
            self._items.append(item)
            self.held_items += count
            self.held_bytes += nbytes
            # falsy on the usual path, where no consumer waits (one test for both directions)
            wake = (self._thread_waiting or self._loop_waiters) and self._wake_consumer_locked()
        finally:
            lock.release()
        if hook is not None:
            hook(self, "put")
        if wake:
            self._wake_consumer(wake)
        return True

    def extend(self, items, nbytes=0):
        """``put()`` of each of the list ``items`` (``nbytes`` in all, one count each), in one
        lock round and at most one wake-up. False, and they are dropped, once the consumer
        closed the stream."""
        lock = self._lock
        lock.acquire()
        try:
            if self.phase is not _OPEN:
                if self.phase is _CLOSED:
                    return False
                raise RuntimeError("Handoff.extend() after finish()")
            self._items.extend(items)
            self.held_items += len(items)
            self.held_bytes += nbytes
            wake = (self._thread_waiting or self._loop_waiters) and self._wake_consumer_locked()
        finally:
            lock.release()
        if hook is not None:
            hook(self, "put")
        if wake:
            self._wake_consumer(wake)
        return True

    def _room_locked(self):
        return self.phase is not _OPEN or (
            self.held_items < self.max_items and self.held_bytes < self.max_bytes)

    def has_room(self):
        """True while the items held are below both limits, or once the stream is not open.
        Read without the lock: only the producer raises the counts and only the consumer ends
        the phase, so for the producer a stale value errs toward no room (its wait then checks
        again under the lock) or toward an open stream (its ``put()`` then says it closed)."""
        return self.phase is not _OPEN or (
            self.held_items < self.max_items and self.held_bytes < self.max_bytes)

    async def room(self):
        """Loop producer: wait until ``has_room()``."""
        await self._loop_wait(self._room_locked)

    def wait_room(self, deadline=None):
        """Thread producer: wait until ``has_room()``; False if ``deadline`` came first."""
        return self._thread_wait(self._room_locked, deadline)

    def finish(self, outcome=None, last=None, nbytes=0, count=0):
        """End the stream: the items put so far, then the items of the list ``last`` (their
        total ``nbytes`` and ``count`` as ``put`` would take them), are the last; the same as
        putting each of ``last`` and then finishing, in one lock round and one wake-up.
        ``outcome`` (None for a clean end) reaches the consumer with the last batch. False, and
        ``last`` is dropped, once the consumer closed the stream. Only the first call counts;
        one after ``close()`` only wakes a loop consumer waiting in ``finished()``."""
        lock = self._lock
        lock.acquire()
        try:
            if self.phase is not _OPEN:
                if self.phase is _FINISHED:
                    if last:
                        raise RuntimeError("Handoff.finish() with items after finish()")
                    return True
                if self._producer_ended:
                    return False
                taken = False
                # After close(): every other waiter was woken by close()
                self._producer_ended = True
                wake_loop = None if self._loop_produces else self._wake_loop_locked()
                wake_thread = False
                waiters = None
            else:
                taken = True
                if last:
                    self._items.extend(last)
                    self.held_items += count
                    self.held_bytes += nbytes
                self.phase = _FINISHED
                self._outcome = outcome
                self._producer_ended = True
                wake_thread = self._thread_waiting
                self._thread_waiting = False
                waiters = None
                wake_loop = None
                if self._loop_waiters:
                    if self._loop_produces:
                        waiters = self._loop_waiters
                    else:
                        wake_loop = self._loop_waiters
                    self._loop_waiters = []
        finally:
            lock.release()
        if hook is not None:
            hook(self, "finish")
        if wake_thread:
            self.signal.set()
        if wake_loop is not None:
            self._schedule_loop_wake(wake_loop)
        if waiters is not None:
            _resolve_all(waiters)
        return taken

    def _wanted_locked(self):
        return self._wanted or self.phase is not _OPEN

    def wanted(self):
        """Pull mode: whether the consumer asked for more since the last call (the request is
        cleared), or the stream is no longer open (a producer then learns from ``put()`` that
        the consumer left). When not, a thread producer is registered, so that the next
        ``want()`` or ``close()`` sets its signal."""
        lock = self._lock
        lock.acquire()
        try:
            if self._wanted or self.phase is not _OPEN:
                self._wanted = False
                return True
            if not self._loop_produces:
                self._thread_waiting = True
            return False
        finally:
            lock.release()

    async def demand(self):
        """Loop producer: wait until the consumer asks for more, or the stream is no longer open
        (the consumer left, or another producer task finished it)."""
        await self._loop_wait(self._wanted_locked)

    def wait_demand(self, deadline=None):
        """Thread producer: wait until the consumer asks for more or the stream is no longer
        open; False if ``deadline`` came first."""
        return self._thread_wait(self._wanted_locked, deadline)

    # ---- consumer face -------------------------------------------------------------------------

    def _take_locked(self):
        items = self._items
        if items:
            self._items = []
            held = self.held_items
            held_bytes = self.held_bytes
            batch = Batch(items, held - self._taken_items, held_bytes - self._taken_bytes, self.phase,
                          self._outcome)
            self._taken_items = held
            self._taken_bytes = held_bytes
            return batch
        if self.phase is not _OPEN:
            return Batch([], 0, 0, self.phase, self._outcome)
        return None

    def poll(self):
        """Take what is there without waiting: a ``Batch``, or None while nothing new came and
        the stream is open. When None, a thread consumer is registered, so that the next
        ``put()`` or ``finish()`` sets its signal."""
        lock = self._lock
        lock.acquire()
        try:
            batch = self._take_locked()
            if batch is None and self._loop_produces:
                self._thread_waiting = True
            return batch
        finally:
            lock.release()

    async def take(self):
        """Loop consumer: wait for items, the end, or ``close()``, and take them. Each wait
        counts in ``waits`` (a caller that yields to other tasks now and then can tell that it
        just did)."""
        lock = self._lock
        while True:
            lock.acquire()
            try:
                # _take_locked(), inline: a loop consumer takes at least once per request
                items = self._items
                if items:
                    self._items = []
                    held = self.held_items
                    held_bytes = self.held_bytes
                    batch = Batch(items, held - self._taken_items, held_bytes - self._taken_bytes,
                                  self.phase, self._outcome)
                    self._taken_items = held
                    self._taken_bytes = held_bytes
                    return batch
                if self.phase is not _OPEN:
                    return Batch([], 0, 0, self.phase, self._outcome)
                # registered in the critical section that found nothing (invariant 4)
                fut = self._loop.create_future()
                self._loop_waiters.append(fut)
                self.waits += 1
            finally:
                lock.release()
            try:
                await fut
            except BaseException:
                lock.acquire()
                try:
                    if fut in self._loop_waiters:
                        self._loop_waiters.remove(fut)
                finally:
                    lock.release()
                raise

    def take_wait(self, deadline=None):
        """Thread consumer: wait for items, the end, or ``close()``, and take them; None if
        ``deadline`` came first."""
        while True:
            batch = self.poll()
            if batch is not None:
                return batch
            if hook is not None:
                hook(self, "thread-wait")
            if not self.signal.wait(deadline) or _passed(deadline):
                lock = self._lock
                lock.acquire()
                try:
                    self._thread_waiting = False
                    return self._take_locked()
                finally:
                    lock.release()

    def release(self, count, nbytes=0):
        """Give back the credit of items that were delivered (sent or yielded), not merely
        taken. Wakes a producer waiting for room when this brings the held items down to the
        low-water mark (half the limits)."""
        lock = self._lock
        lock.acquire()
        try:
            # Wake a producer waiting for room only when this crosses the low-water mark
            # (computed inline: a consumer releases once per item)
            items = self.held_items
            held = self.held_bytes
            low_items = self._low_items
            low_bytes = self._low_bytes
            self.held_items = items - count
            self.held_bytes = held - nbytes
            self._taken_items -= count
            self._taken_bytes -= nbytes
            wake = (
                (items > low_items or held > low_bytes)
                and items - count <= low_items and held - nbytes <= low_bytes
                and self._wake_producer_locked()
            )
        finally:
            lock.release()
        if hook is not None:
            hook(self, "release")
        if wake:
            self._wake_producer(wake)

    def want(self):
        """Pull mode: ask the producer for more. Wakes a producer waiting for demand."""
        if self._wanted:
            # Asked already (read without the lock): only the producer clears it, and then acts
            # on that ask, so the items or the end it answers with are still to come.
            return
        lock = self._lock
        lock.acquire()
        try:
            if self._wanted:
                return
            self._wanted = True
            wake = self._wake_producer_locked()
        finally:
            lock.release()
        if hook is not None:
            hook(self, "want")
        if wake:
            self._wake_producer(wake)

    def close(self, reason=None):
        """The consumer leaves: items not taken are dropped, ``put()`` returns False from now
        on, and every waiter on both sides is woken. Only the first call counts."""
        lock = self._lock
        lock.acquire()
        try:
            if self.phase is _CLOSED:
                return
            self.phase = _CLOSED
            self._outcome = reason
            self._items = []
            self._taken_items = self.held_items  # the dropped items count as taken
            self._taken_bytes = self.held_bytes
            wake_thread = self._wake_thread_locked()
            if self._loop_produces:
                waiters = ()
                wake_loop = self._wake_loop_locked()
            else:
                waiters = self._loop_waiters
                self._loop_waiters = []
                wake_loop = None
        finally:
            lock.release()
        if hook is not None:
            hook(self, "close")
        if wake_thread:
            self.signal.set()
        if wake_loop is not None:
            self._schedule_loop_wake(wake_loop)
        _resolve_all(waiters)

    def _producer_ended_locked(self):
        return self._producer_ended

    async def finished(self):
        """Loop consumer: wait until the producer called ``finish()``, also when that came after
        ``close()``: a consumer that left waits here until the producer stopped."""
        await self._loop_wait(self._producer_ended_locked)

    def _wake_consumer_locked(self):
        if self._loop_produces:
            return self._wake_thread_locked()
        return self._wake_loop_locked()

    def _wake_consumer(self, wake):
        if self._loop_produces:
            self.signal.set()
        else:
            self._schedule_loop_wake(wake)

    def _wake_producer_locked(self):
        if self._loop_produces:
            return self._wake_loop_locked()
        return self._wake_thread_locked()

    def _wake_producer(self, wake):
        if self._loop_produces:
            self._schedule_loop_wake(wake)
        else:
            self.signal.set()
