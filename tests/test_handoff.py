"""The loop/thread hand-off (a2wsgi/_handoff.py): one test per invariant of its docstring.

Interleavings are forced, not hoped for: the module's ``hook`` stops a thread right after a
lock is released (or right before a thread waits) while the test makes the other side act, and a
``schedule`` that the test runs by hand decides when the loop is woken. Timing appears only as
hang guards (``HANG``) and in the deadline tests.
"""

import asyncio
import concurrent.futures
import sys
import threading
import time

import pytest

from a2wsgi import _handoff
from a2wsgi._handoff import Batch, Handoff, Phase, Signal

HANG = 10.0  # hang guard (seconds): a wait that should end long before this


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


async def _spin(n):
    for _ in range(n):
        await asyncio.sleep(0)


def spin(loop, n=10):
    """Let every task that can run on ``loop`` run (``n`` rounds of ready callbacks)."""
    loop.run_until_complete(_spin(n))


def run(loop, awaitable):
    return loop.run_until_complete(asyncio.wait_for(awaitable, HANG))


def in_thread(fn, *args):
    """Run ``fn(*args)`` on a new thread; a concurrent future of its result."""
    fut = concurrent.futures.Future()

    def main():
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: B036 - handed to the test
            fut.set_exception(exc)

    threading.Thread(target=main, daemon=True).start()
    return fut


def soon():
    return time.monotonic() + HANG


def before_deadline(wait):
    """``wait(deadline)`` with a hang-guard deadline, failing if the deadline is what ended it:
    a thread wait ends with the right answer at its deadline, which would hide a lost wake-up."""
    deadline = soon()
    result = wait(deadline)
    assert time.monotonic() < deadline, "%s was not woken: it ended at its deadline" % (
        wait.__name__,)
    return result


class Gate:
    """One stop of the hook: the first thread that reaches ``point`` waits until ``open()``."""

    def __init__(self, point):
        self.point = point
        self.arrived = threading.Event()
        self.go = threading.Event()

    def reached(self):
        assert self.arrived.wait(HANG), "no thread reached %r" % self.point

    def open(self):
        self.go.set()


class Gates:
    """The module's ``hook``: records every point reached and stops at the registered ones."""

    def __init__(self):
        self._lock = threading.Lock()
        self._gates = []
        self.seen = []

    def stop_at(self, point):
        gate = Gate(point)
        self._gates.append(gate)
        return gate

    def open_all(self):
        for gate in self._gates:
            gate.open()

    def __call__(self, handoff, point):
        with self._lock:
            self.seen.append(point)
            gate = next((g for g in self._gates if g.point == point and not g.arrived.is_set()), None)
            if gate is not None:
                gate.arrived.set()
        if gate is not None:
            assert gate.go.wait(HANG), "gate %r never opened" % point


@pytest.fixture
def gates(monkeypatch):
    g = Gates()
    monkeypatch.setattr(_handoff, "hook", g)
    yield g
    g.open_all()


class ManualSchedule:
    """A ``schedule`` that counts its calls and keeps the callbacks until the test runs them, so
    the test decides when the loop is woken. Also checks that no lock is held when called."""

    def __init__(self):
        self.calls = 0
        self.pending = []

    def __call__(self, callback, *args):
        # the caller is a Handoff method (``_schedule_loop_wake``): its lock must be free
        handoff = sys._getframe(1).f_locals["self"]
        assert not handoff._lock.locked(), "schedule called with the lock held"
        self.calls += 1
        self.pending.append((callback, args))

    def run(self):
        callbacks, self.pending = self.pending, []
        for callback, args in callbacks:
            callback(*args)


class CountingSchedule:
    """``loop.call_soon_threadsafe``, counting its calls."""

    def __init__(self, loop):
        self.loop = loop
        self.calls = 0

    def __call__(self, callback, *args):
        self.calls += 1
        self.loop.call_soon_threadsafe(callback, *args)


def concat(batches):
    return [item for batch in batches for item in batch.items]


# ---- pull mode: a stream that is no longer open counts as wanted -------------------------------

def test_wanted_after_close_is_true_so_a_thread_producer_does_not_wait_forever(loop):
    h = Handoff(loop, "consumer")
    h.close("gone")
    # The thread producer's loop: wanted() or wait on the signal. After close() nobody sets it.
    assert h.wanted() is True
    assert h.put(b"x") is False
    assert h.wait_demand(time.monotonic()) is True


def test_demand_returns_when_another_producer_task_finishes(loop):
    h = Handoff(loop, "producer")

    async def main():
        waiter = asyncio.ensure_future(h.demand())
        await _spin(3)
        assert not waiter.done()
        h.finish()
        await asyncio.wait_for(waiter, HANG)

    run(loop, main())
    assert h.wanted() is True


# ---- 1. every item taken exactly once, in put order --------------------------------------------

@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_batches_hold_every_item_once_in_put_order(loop, loop_is):
    h = Handoff(loop, loop_is)
    batches = []
    assert h.poll() is None
    h.put("a", 1)
    h.put("bb", 2)
    batches.append(h.poll())
    assert h.poll() is None
    h.put("ccc", 3, count=2)
    h.put("", 0)
    batches.append(h.poll())
    h.put("d", 1)
    h.finish("done")
    batches.append(h.poll())
    assert concat(batches) == ["a", "bb", "ccc", "", "d"]
    assert [(b.count, b.nbytes, b.phase, b.outcome) for b in batches] == [
        (2, 3, Phase.OPEN, None), (3, 3, Phase.OPEN, None), (1, 1, Phase.FINISHED, "done")]
    # After the last items: an empty FINISHED batch, every time.
    for _ in range(2):
        end = h.poll()
        assert (end.items, end.count, end.nbytes, end.phase, end.outcome) == (
            [], 0, 0, Phase.FINISHED, "done")


def test_loop_take_gets_items_once_in_order_and_two_takers_share_them(loop):
    h = Handoff(loop, "consumer")

    async def main():
        first = asyncio.ensure_future(h.take())
        second = asyncio.ensure_future(h.take())
        await _spin(3)
        h.put(1)
        h.put(2)
        await _spin(5)
        done = [t for t in (first, second) if t.done()]
        assert len(done) == 1 and done[0].result().items == [1, 2]
        waiting = second if done[0] is first else first
        h.put(3)
        h.finish()
        batch = await asyncio.wait_for(waiting, HANG)
        assert (batch.items, batch.phase) == ([3], Phase.FINISHED)

    run(loop, main())


# ---- 2. held (put, not released) stays within the limits plus the one being put ----------------

@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_room_counts_items_until_released_not_until_taken(loop, loop_is):
    h = Handoff(loop, loop_is, max_items=3)
    for i in range(3):
        assert h.has_room()
        h.put(i)
    assert not h.has_room() and h.held_items == 3
    assert concat([h.poll()]) == [0, 1, 2]
    assert not h.has_room(), "taking is not delivering: the credit comes back with release()"
    h.release(1)
    assert h.has_room() and h.held_items == 2


@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_bytes_limit_is_exceeded_by_at_most_the_item_that_crossed_it(loop, loop_is):
    h = Handoff(loop, loop_is, max_bytes=10)
    sizes = [4, 4, 7, 1, 9]
    delivered = []                     # taken, in order, not yet released
    for size in sizes:
        while not h.has_room():
            batch = h.poll()
            if batch is not None:
                delivered += batch.items
            h.release(1, delivered.pop(0))
        assert h.held_bytes < 10
        h.put(size, size)
        assert h.held_bytes - size < 10
    assert h.held_bytes == 7 + 1 + 9   # 4 and 4 were released to make room for 1


# ---- 3. woken only on a transition it waits for; one loop wake-up per transition ---------------

def _loop_case(loop, name, schedule):
    """A hand-off with the loop waiting on one thing, and the thread-side step that ends it."""
    if name.startswith("take/"):
        h = Handoff(loop, "consumer", schedule=schedule)
        wait = h.take
        notify = {"take/put": lambda: h.put("a", 1), "take/finish": lambda: h.finish("end")}[name]
    elif name.startswith("room/"):
        h = Handoff(loop, "producer", max_items=1, schedule=schedule)
        h.put("a")
        assert h.poll().items == ["a"]
        wait = h.room
        notify = {"room/release": lambda: h.release(1), "room/close": lambda: h.close("bye")}[name]
    else:
        h = Handoff(loop, "producer", schedule=schedule)
        wait = h.demand
        notify = {"demand/want": h.want, "demand/close": lambda: h.close("bye")}[name]
    return h, wait, notify


LOOP_CASES = ["take/put", "take/finish", "room/release", "room/close", "demand/want",
              "demand/close"]


@pytest.mark.parametrize("name", LOOP_CASES)
def test_loop_not_woken_when_nobody_waits(loop, name):
    schedule = ManualSchedule()
    h, wait, notify = _loop_case(loop, name, schedule)
    notify()
    assert schedule.calls == 0
    run(loop, wait())  # ready: returns without waiting


@pytest.mark.parametrize("name", LOOP_CASES)
def test_loop_woken_once_by_the_schedule_and_only_by_it(loop, name):
    schedule = ManualSchedule()
    h, wait, notify = _loop_case(loop, name, schedule)
    waiters = [loop.create_task(wait()) for _ in range(2)]
    spin(loop)
    notify()
    notify()  # a second transition while the wake-up is pending is coalesced
    assert schedule.calls == 1
    spin(loop)
    assert not any(t.done() for t in waiters), "the loop ran a waiter that nothing woke"
    schedule.run()
    spin(loop)
    done = [t for t in waiters if t.done()]
    # Both re-check; a put is taken by one of them, the other waits for more.
    assert len(done) == (1 if name == "take/put" else 2)


@pytest.mark.parametrize("name", LOOP_CASES)
def test_cancelled_loop_waiter_is_not_woken(loop, name):
    schedule = ManualSchedule()
    h, wait, notify = _loop_case(loop, name, schedule)
    waiter = loop.create_task(wait())
    spin(loop)
    waiter.cancel()
    spin(loop)
    notify()
    assert schedule.calls == 0


def test_release_wakes_the_loop_producer_only_when_it_makes_room(loop):
    schedule = ManualSchedule()
    h = Handoff(loop, "producer", max_items=2, schedule=schedule)
    for i in range(4):
        h.put(i)
    h.poll()
    waiter = loop.create_task(h.room())
    spin(loop)
    h.release(1)  # 3 held: still full
    h.release(1)  # 2 held: still full
    assert schedule.calls == 0
    h.release(1)  # 1 held: room
    h.release(1)
    assert schedule.calls == 1
    schedule.run()
    spin(loop)
    assert waiter.done()


def test_thread_signal_is_set_only_when_the_thread_waits_for_that_transition(loop):
    consumer_side = Handoff(loop, "producer")          # the thread consumes
    consumer_side.put("a")                              # thread not registered: no signal
    assert consumer_side.signal.wait(time.monotonic()) is False
    assert consumer_side.poll().items == ["a"]
    assert consumer_side.poll() is None                 # registers
    consumer_side.put("b")
    consumer_side.put("c")                              # one permit for both
    assert consumer_side.signal.wait(time.monotonic()) is True
    assert consumer_side.signal.wait(time.monotonic()) is False

    producer_side = Handoff(loop, "consumer", max_items=2)   # the thread produces
    producer_side.put(1)
    producer_side.put(2)
    producer_side.put(3)
    producer_side.poll()
    assert producer_side.wait_room(time.monotonic()) is False  # registered, then deregistered
    producer_side.release(1)                                    # 2 held: still full
    assert producer_side.signal.wait(time.monotonic()) is False
    producer_side.want()                                        # nobody waits for demand
    assert producer_side.signal.wait(time.monotonic()) is False
    assert producer_side.wanted() is True


# ---- 4. waiting flags and state under one lock: a wake-up may be spurious, never lost ----------

def _thread_case(loop, name):
    """A hand-off with the thread waiting on one thing, and the loop-side step that ends it."""
    if name.startswith("take_wait/"):
        h = Handoff(loop, "producer")

        def wait():
            return before_deadline(h.take_wait)

        notify = {"take_wait/put": lambda: h.put("a", 1),
                  "take_wait/finish": lambda: h.finish("end"),
                  "take_wait/finish+last": lambda: h.finish("end", ["z"], 1, 1),
                  "take_wait/put+extend": lambda: h.extend(["a", "b"], 2)}[name]
        expect = {"take_wait/put": (["a"], Phase.OPEN, None),
                  "take_wait/finish": ([], Phase.FINISHED, "end"),
                  "take_wait/finish+last": (["z"], Phase.FINISHED, "end"),
                  "take_wait/put+extend": (["a", "b"], Phase.OPEN, None)}[name]

        def check(batch):
            assert (batch.items, batch.phase, batch.outcome) == expect
    else:
        h = Handoff(loop, "consumer", max_items=1)
        if name.startswith("wait_room/"):
            h.put("a")
            assert h.poll().items == ["a"]

            def wait():
                return before_deadline(h.wait_room)

            notify = {"wait_room/release": lambda: h.release(1),
                      "wait_room/close": lambda: h.close("bye")}[name]
        else:
            def wait():
                return before_deadline(h.wait_demand)

            notify = {"wait_demand/want": h.want,
                      "wait_demand/close": lambda: h.close("bye")}[name]

        def check(result):
            assert result is True
    return h, wait, notify, check, name.split("/")[1].split("+")[0]


THREAD_CASES = ["take_wait/put", "take_wait/put+extend", "take_wait/finish", "take_wait/finish+last", "wait_room/release", "wait_room/close",
                "wait_demand/want", "wait_demand/close"]


@pytest.mark.parametrize("name", THREAD_CASES)
def test_thread_step_before_the_wait_is_seen_without_waiting(loop, gates, name):
    h, wait, notify, check, point = _thread_case(loop, name)
    notify()
    check(wait())
    assert "thread-wait" not in gates.seen


@pytest.mark.parametrize("name", THREAD_CASES)
def test_thread_step_between_registering_and_waiting_is_not_lost(loop, gates, name):
    h, wait, notify, check, point = _thread_case(loop, name)
    registered = gates.stop_at("thread-wait")
    waiter = in_thread(wait)
    registered.reached()
    notify()                  # the thread said it waits, and does not wait yet
    registered.open()
    check(waiter.result(HANG))


@pytest.mark.parametrize("name", THREAD_CASES)
def test_thread_woken_by_a_notifier_stopped_between_its_lock_and_its_wake(loop, gates, name):
    h, wait, notify, check, point = _thread_case(loop, name)
    registered = gates.stop_at("thread-wait")
    decided = gates.stop_at(point)
    waiter = in_thread(wait)
    registered.reached()
    notifier = in_thread(notify)
    decided.reached()         # the state changed and the wake-up is decided, not yet given
    registered.open()         # the thread goes on to wait
    decided.open()
    notifier.result(HANG)
    check(waiter.result(HANG))


@pytest.mark.parametrize("name", THREAD_CASES)
def test_thread_sees_a_step_whose_wake_up_is_still_pending(loop, gates, name):
    h, wait, notify, check, point = _thread_case(loop, name)
    decided = gates.stop_at(point)
    notifier = in_thread(notify)
    decided.reached()
    check(wait())             # the state is already there: no wait
    decided.open()
    notifier.result(HANG)


@pytest.mark.parametrize("name", LOOP_CASES)
def test_loop_waiter_woken_then_step_before_it_rechecks(loop, name):
    schedule = ManualSchedule()
    h, wait, notify = _loop_case(loop, name, schedule)
    waiter = loop.create_task(wait())
    spin(loop)
    notify()
    schedule.run()            # the loop resolves the waiters; they have not run yet
    if name == "take/put":
        h.put("b", 1)         # nobody registered: no second wake-up, the re-check sees it
    assert schedule.calls == 1
    spin(loop)
    assert waiter.done()
    if name == "take/put":
        assert waiter.result().items == ["a", "b"]


@pytest.mark.parametrize("name", LOOP_CASES)
def test_loop_waiter_woken_by_a_thread_stopped_between_its_lock_and_its_wake(loop, gates, name):
    schedule = ManualSchedule()
    h, wait, notify = _loop_case(loop, name, schedule)
    waiter = loop.create_task(wait())
    spin(loop)
    decided = gates.stop_at(name.split("/")[1])
    notifier = in_thread(notify)
    decided.reached()
    spin(loop)
    assert not waiter.done() and schedule.calls == 0
    decided.open()
    notifier.result(HANG)
    assert schedule.calls == 1
    schedule.run()
    spin(loop)
    assert waiter.done()


def test_spurious_loop_wake_up_sends_the_waiter_back_to_wait(loop, gates):
    schedule = ManualSchedule()
    h = Handoff(loop, "consumer", schedule=schedule)
    first = loop.create_task(h.take())
    spin(loop)
    decided = gates.stop_at("put")
    notifier = in_thread(h.put, "a")
    decided.reached()
    second = run(loop, h.take())   # takes "a" before the wake-up is scheduled
    assert second.items == ["a"]
    decided.open()
    notifier.result(HANG)
    schedule.run()
    spin(loop)
    assert not first.done(), "a spurious wake-up ended a take with nothing to take"
    h.put("b")
    assert schedule.calls == 2
    schedule.run()
    spin(loop)
    assert first.result().items == ["b"]


# ---- 5. finish and close: idempotent, terminal, wake every waiter on both sides ----------------

@pytest.mark.parametrize("thread_waits", ["wait_room", "wait_demand"])
def test_close_by_the_loop_wakes_loop_takers_and_the_thread_producer(loop, gates, thread_waits):
    h = Handoff(loop, "consumer", max_items=2)
    h.put(1)
    h.put(2)
    assert h.poll().items == [1, 2]              # taken, not released: full and empty
    takers = [loop.create_task(h.take()) for _ in range(2)]
    spin(loop)
    registered = gates.stop_at("thread-wait")
    producer = in_thread(before_deadline, getattr(h, thread_waits))
    registered.reached()
    registered.open()
    h.close("bye")
    spin(loop)
    assert producer.result(HANG) is True
    for t in takers:
        batch = t.result()
        assert (batch.items, batch.phase, batch.outcome) == ([], Phase.CLOSED, "bye")
    h.close("again")
    h.finish("late")
    assert h.phase is Phase.CLOSED and h.poll().outcome == "bye"
    assert h.put(3) is False and h.has_room() and h.wanted()


def test_close_by_the_thread_wakes_every_loop_producer_with_one_wake_up(loop):
    schedule = CountingSchedule(loop)
    h = Handoff(loop, "producer", max_items=1, schedule=schedule)
    h.put(1)
    assert h.poll().items == [1]
    waiters = [loop.create_task(h.room()) for _ in range(2)]
    waiters += [loop.create_task(h.demand()) for _ in range(2)]
    spin(loop)
    assert not any(t.done() for t in waiters)
    closer = in_thread(h.close, "bye")
    closer.result(HANG)
    closer = in_thread(h.close, "again")
    closer.result(HANG)
    run(loop, asyncio.gather(*waiters))
    assert schedule.calls == 1
    assert h.put(2) is False


def test_finish_by_the_loop_wakes_the_thread_consumer_and_other_producer_tasks(loop, gates):
    h = Handoff(loop, "producer", max_items=1)
    h.put(1)
    assert h.poll().items == [1]
    waiters = [loop.create_task(h.room()), loop.create_task(h.demand())]
    spin(loop)
    registered = gates.stop_at("thread-wait")
    consumer = in_thread(before_deadline, h.take_wait)
    registered.reached()
    registered.open()

    async def finisher():
        h.finish("end")
        h.finish("other")
        await asyncio.gather(*waiters)

    run(loop, finisher())
    batch = consumer.result(HANG)
    assert (batch.items, batch.phase, batch.outcome) == ([], Phase.FINISHED, "end")
    with pytest.raises(RuntimeError, match="after finish"):
        h.put(2)


@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_close_after_finish_drops_what_was_not_taken(loop, loop_is):
    h = Handoff(loop, loop_is)
    h.put("a")
    h.finish("end")
    h.close("left")
    batch = h.poll()
    assert (batch.items, batch.phase, batch.outcome) == ([], Phase.CLOSED, "left")
    assert h.put("b") is False


def test_finish_with_last_items_puts_them_and_ends_in_one_wake_up(loop):
    """``finish(outcome, last, nbytes, count)`` is ``put`` of each of ``last`` and ``finish``
    in one lock round: a waiting thread consumer is signalled once and takes them with the end."""
    h = Handoff(loop, "producer", max_items=4)    # the loop produces, the thread consumes
    h.put("a", 1)
    assert h.poll().items == ["a"]
    assert h.poll() is None                       # the thread registers as waiting
    assert h.finish("end", ["head", "body"], 4, 1) is True
    assert h.signal.wait(time.monotonic()) is True
    assert h.signal.wait(time.monotonic()) is False, "woken twice for one end"
    batch = h.poll()
    assert (batch.items, batch.count, batch.nbytes, batch.phase, batch.outcome) == (
        ["head", "body"], 1, 4, Phase.FINISHED, "end")
    assert (h.held_items, h.held_bytes) == (2, 5)   # "a" and "body": released when delivered
    h.release(2, 5)
    assert (h.held_items, h.held_bytes) == (0, 0)
    assert h.finish("again") is True                 # idempotent without items
    with pytest.raises(RuntimeError, match="after finish"):
        h.finish("again", ["late"], 4, 1)            # items after the end are a caller's bug


@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_extend_puts_every_item_in_order_in_one_wake_up(loop, loop_is):
    schedule = CountingSchedule(loop)
    h = Handoff(loop, loop_is, schedule=schedule)
    h.put("a", 1)
    if loop_is == "producer":
        assert h.poll().items == ["a"]
        assert h.poll() is None                    # the thread consumer waits
    else:
        waiter = loop.create_task(h.take())
        spin(loop)
        assert waiter.done() and waiter.result().items == ["a"]
        waiter = loop.create_task(h.take())        # the loop consumer waits
        spin(loop)
    assert h.extend(["b", "cc", "d"], 4) is True
    if loop_is == "producer":
        assert h.signal.wait(time.monotonic()) is True
        assert h.signal.wait(time.monotonic()) is False, "woken twice for one extend"
        batch = h.poll()
    else:
        assert schedule.calls == 1
        spin(loop)
        batch = waiter.result()
    assert (batch.items, batch.count, batch.nbytes) == (["b", "cc", "d"], 3, 4)
    assert (h.held_items, h.held_bytes) == (4, 5)
    h.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        h.extend(["late"], 4)


@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_extend_after_close_drops_the_items_and_says_so(loop, loop_is):
    h = Handoff(loop, loop_is)
    h.close("left")
    assert h.extend(["a", "b"], 2) is False
    batch = h.poll()
    assert (batch.items, batch.phase, batch.outcome) == ([], Phase.CLOSED, "left")


@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_finish_with_last_items_after_close_drops_them_and_says_so(loop, loop_is):
    h = Handoff(loop, loop_is)
    h.close("left")
    assert h.finish("end", ["head"], 0, 0) is False
    assert h.finish("end", ["head"], 0, 0) is False
    batch = h.poll()
    assert (batch.items, batch.phase, batch.outcome) == ([], Phase.CLOSED, "left")


def test_finish_after_close_ends_a_loop_consumers_wait_for_the_producer(loop):
    """The consumer left (``close``) and waits in ``finished()``: it ends only when the thread
    producer calls ``finish()``, woken by one schedule call, and the stream stays closed."""
    schedule = ManualSchedule()
    h = Handoff(loop, "consumer", signal=Signal(), schedule=schedule)
    h.put("a")
    h.close("left")
    waiter = loop.create_task(h.finished())
    spin(loop)
    assert not waiter.done(), "finished() returned before the producer finished"
    assert schedule.calls == 0
    h.finish("late")
    h.finish("later")
    assert schedule.calls == 1
    schedule.run()
    spin(loop)
    assert waiter.done() and waiter.result() is None
    batch = h.poll()
    assert (batch.items, batch.phase, batch.outcome) == ([], Phase.CLOSED, "left")
    assert h.put("b") is False


def test_finished_returns_at_once_when_the_producer_finished_before_close(loop):
    schedule = ManualSchedule()
    h = Handoff(loop, "consumer", schedule=schedule)
    h.finish()
    h.close("left")
    run(loop, h.finished())
    assert schedule.calls == 0


# ---- 6. deadlines, not timeouts that restart ---------------------------------------------------

@pytest.mark.parametrize("which", ["take_wait", "wait_room", "wait_demand"])
def test_spurious_wake_ups_do_not_extend_a_deadline(loop, monkeypatch, which):
    if which == "take_wait":
        h = Handoff(loop, "producer")
    else:
        h = Handoff(loop, "consumer", max_items=1)
        h.put("a")
        h.poll()
    wake_ups = []

    def spurious(handoff, point):
        if point == "thread-wait":
            wake_ups.append(point)
            handoff.signal.set()   # as another hand-off sharing the signal would

    monkeypatch.setattr(_handoff, "hook", spurious)
    deadline = time.monotonic() + 0.05
    result = in_thread(getattr(h, which), deadline).result(HANG)
    assert result in (None, False) and time.monotonic() >= deadline
    assert len(wake_ups) > 1


@pytest.mark.parametrize("which", ["take_wait", "wait_room", "wait_demand"])
def test_a_passed_deadline_returns_at_once_and_unregisters(loop, which):
    if which == "take_wait":
        h = Handoff(loop, "producer")
        notify = lambda: h.put("x")  # noqa: E731
    else:
        h = Handoff(loop, "consumer", max_items=1)
        h.put("a")
        h.poll()
        notify = {"wait_room": lambda: h.release(1), "wait_demand": h.want}[which]
    assert getattr(h, which)(time.monotonic() - 1) in (None, False)
    notify()
    assert h.signal.wait(time.monotonic()) is False, "a thread that stopped waiting was woken"


def test_signal_keeps_one_permit_and_honours_its_deadline():
    s = Signal()
    assert s.wait(time.monotonic()) is False
    assert s.wait(time.monotonic() + 0.01) is False
    s.set()
    s.set()
    assert s.wait() is True
    assert s.wait(time.monotonic()) is False
    s.set()
    assert s.wait(time.monotonic() - 1) is True


# ---- 7. no code from outside the module runs with the lock held --------------------------------

class CheckingSignal(Signal):
    __slots__ = ("handoffs",)

    def __init__(self):
        super().__init__()
        self.handoffs = []

    def _check(self):
        for h in self.handoffs:
            assert not h._lock.locked(), "signal used with the lock held"

    def set(self):
        self._check()
        super().set()

    def wait(self, deadline=None):
        self._check()
        return super().wait(deadline)


@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_hook_schedule_and_signal_run_without_the_lock(loop, monkeypatch, loop_is):
    def hook(handoff, point):
        assert not handoff._lock.locked(), "hook %r called with the lock held" % point
        points.add(point)

    points = set()
    monkeypatch.setattr(_handoff, "hook", hook)
    signal = CheckingSignal()
    schedule = ManualSchedule()
    h = Handoff(loop, loop_is, max_items=1, signal=signal, schedule=schedule)
    signal.handoffs.append(h)

    async def loop_waits():
        if loop_is == "producer":
            return await asyncio.gather(h.room(), h.demand())
        return await h.take()

    waiter = loop.create_task(loop_waits())
    spin(loop)
    h.poll()
    h.wanted()
    h.put("a")
    h.put("b")
    h.take_wait(time.monotonic())
    h.want()
    h.release(2)
    h.wait_room(time.monotonic())
    h.wait_demand(time.monotonic())
    h.finish()
    h.close()
    schedule.run()
    spin(loop)
    assert waiter.done()
    assert points >= {"put", "release", "want", "finish", "close"}


# ---- pull mode: want() / wanted() / demand() / wait_demand() -----------------------------------

def test_wanted_clears_the_request_and_registers_the_thread_producer(loop):
    h = Handoff(loop, "consumer")
    assert h.wanted() is False                 # registered
    h.want()
    h.want()                                   # asked already: no second wake-up
    assert h.signal.wait(time.monotonic()) is True
    assert h.signal.wait(time.monotonic()) is False
    assert h.wanted() is True
    assert h.wanted() is False
    h.want()
    assert h.wait_demand(time.monotonic()) is True
    assert h.wait_demand(time.monotonic()) is True, "wait_demand() does not clear the request"
    assert h.wanted() is True


def test_demand_wakes_every_loop_producer_task_and_does_not_clear(loop):
    schedule = CountingSchedule(loop)
    h = Handoff(loop, "producer", schedule=schedule)
    waiters = [loop.create_task(h.demand()) for _ in range(2)]
    spin(loop)
    in_thread(h.want).result(HANG)
    run(loop, asyncio.gather(*waiters))
    assert schedule.calls == 1
    assert h.wanted() is True and h.wanted() is False


@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_pull_mode_produces_one_chunk_per_request(loop, loop_is):
    """The consumer asks (want) before each take; the producer puts one chunk per request."""
    chunks = [b"%d" % i for i in range(50)]
    h = Handoff(loop, loop_is, max_items=1)
    got = []

    async def loop_producer():
        for chunk in chunks:
            await h.demand()
            assert h.wanted()
            h.put(chunk, len(chunk))
        await h.demand()
        h.finish()

    def thread_consumer():
        while True:
            h.want()
            batch = before_deadline(h.take_wait)
            assert batch is not None and len(batch.items) <= 1
            got.extend(batch.items)
            h.release(batch.count, batch.nbytes)
            if batch.phase is Phase.FINISHED:
                return

    def thread_producer():
        for chunk in chunks:
            while not h.wanted():
                assert h.signal.wait(soon())
            h.put(chunk, len(chunk))
        while not h.wanted():
            assert h.signal.wait(soon())
        h.finish()

    async def loop_consumer():
        while True:
            h.want()
            batch = await h.take()
            assert len(batch.items) <= 1
            got.extend(batch.items)
            h.release(batch.count, batch.nbytes)
            if batch.phase is Phase.FINISHED:
                return

    if loop_is == "producer":
        thread = in_thread(thread_consumer)
        run(loop, loop_producer())
    else:
        thread = in_thread(thread_producer)
        run(loop, loop_consumer())
    thread.result(HANG)
    assert got == chunks


# ---- a thread that waits on two hand-offs shares one Signal ------------------------------------

def _two_handoffs(loop):
    """The A->W shape: the thread consumes the response and produces the request body."""
    signal = Signal()
    response = Handoff(loop, "producer", max_items=2, signal=signal)
    request = Handoff(loop, "consumer", max_items=2, signal=signal)
    return signal, response, request


@pytest.mark.parametrize("event", ["response put", "response finish", "request want",
                                   "request close", "both"])
def test_shared_signal_wakes_the_thread_for_either_hand_off(loop, event):
    signal, response, request = _two_handoffs(loop)
    assert response.poll() is None and request.wanted() is False   # both registered
    if event in ("response put", "both"):
        response.put(b"r")
    if event == "response finish":
        response.finish()
    if event in ("request want", "both"):
        request.want()
    if event == "request close":
        request.close()
    assert signal.wait(soon()) is True
    assert (response.poll() is not None) == event.startswith("response") or event == "both"
    assert request.wanted() == event.startswith("request") or event == "both"


def test_shared_signal_wake_up_for_one_hand_off_does_not_hide_the_other(loop, gates):
    """The thread is woken for the response and, before it polls again, the request is wanted:
    the next round sees the request without a second wake-up."""
    signal, response, request = _two_handoffs(loop)
    assert response.poll() is None and request.wanted() is False
    response.put(b"r")
    assert signal.wait(soon()) is True
    request.want()                          # the request's flag was still set: a permit
    assert response.poll().items == [b"r"]
    assert request.wanted() is True
    assert response.poll() is None and request.wanted() is False
    assert signal.wait(time.monotonic()) is True   # spurious (the want's permit), never lost
    assert signal.wait(time.monotonic()) is False


def _shared_signal_round(loop, n):
    signal, response, request = _two_handoffs(loop)
    body = list(range(n))
    sent = []

    def thread():
        received, produced = [], iter(body)
        finished = False
        while True:
            batch = response.poll()
            if batch is not None:
                received.extend(batch.items)
                response.release(batch.count)
                if batch.phase is not Phase.OPEN:
                    return received
            if not finished and request.wanted():
                chunk = next(produced, None)
                if chunk is None:
                    request.finish()
                    finished = True
                else:
                    request.put(chunk)
                continue
            assert signal.wait(soon()), "the thread missed a wake-up"

    async def app():
        got = []
        while True:
            request.want()
            batch = await request.take()
            got.extend(batch.items)
            request.release(batch.count)
            for item in batch.items:
                await response.room()
                response.put(item)
                sent.append(item)
            if batch.phase is Phase.FINISHED:
                break
        response.finish()
        return got

    worker = in_thread(thread)
    got = run(loop, app())
    assert got == body and worker.result(HANG) == sent == body


def test_a_thread_sharing_one_signal_between_two_hand_offs_never_misses_a_wake_up(loop):
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(100):
            _shared_signal_round(loop, 10)
    finally:
        sys.setswitchinterval(previous)


# ---- stress: both directions, two loop tasks, tiny switch interval (hang guards only) ----------

def _stress_loop_produces(loop, tasks, per_task, max_items):
    h = Handoff(loop, "producer", max_items=max_items)
    got = []

    def consumer():
        while True:
            batch = before_deadline(h.take_wait)
            assert batch is not None, "the consumer thread missed a wake-up"
            assert h.held_items <= max_items
            got.extend(batch.items)
            h.release(batch.count, batch.nbytes)
            if batch.phase is Phase.FINISHED:
                return

    async def producer(tag):
        for i in range(per_task):
            await h.room()
            h.put((tag, i), 1)
            assert h.held_items <= max_items

    async def main():
        await asyncio.gather(*(producer(t) for t in range(tasks)))
        h.finish()

    thread = in_thread(consumer)
    run(loop, main())
    thread.result(HANG)
    return got


def _stress_loop_consumes(loop, tasks, per_task, max_items):
    h = Handoff(loop, "consumer", max_items=max_items)
    got = []

    def producer():
        for i in range(tasks * per_task):
            if not h.has_room():
                assert before_deadline(h.wait_room)
            h.put((0, i), 1)
            assert h.held_items <= max_items
        h.finish()

    async def consumer():
        while True:
            batch = await h.take()
            got.extend(batch.items)       # in take order: no await between take and here
            await asyncio.sleep(0)        # delivered later than taken
            h.release(batch.count, batch.nbytes)
            if batch.phase is not Phase.OPEN:
                return

    async def main():
        await asyncio.gather(*(consumer() for _ in range(tasks)))

    thread = in_thread(producer)
    run(loop, main())
    thread.result(HANG)
    return got


@pytest.mark.parametrize("loop_is", ["producer", "consumer"])
def test_stress_every_item_once_in_order_within_the_limit(loop, loop_is):
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(300):
            if loop_is == "producer":
                got = _stress_loop_produces(loop, 2, 10, 3)
            else:
                got = _stress_loop_consumes(loop, 2, 10, 3)
            for tag in (0, 1):
                mine = [i for t, i in got if t == tag]
                assert mine == sorted(mine)
            assert sorted(got) == sorted(set(got)) and len(got) == 20
    finally:
        sys.setswitchinterval(previous)


# ---- Hypothesis: a real loop thread and a real worker thread, checked after every step ---------

from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule  # noqa: E402

MAX_ITEMS = 2
MAX_BYTES = 6
ENDS_AFTER = 15  # steps before finish() and close() may come


async def _call(fn, *args):
    return fn(*args)


class HandoffMachine(RuleBasedStateMachine):
    """Steps of both faces, each run on its side (the loop in its own thread, the other side on
    one worker thread), against a model of what the hand-off holds and who must be awake.

    A wait is started as a waiter (a loop task, or the worker thread blocked in its wait); after
    every step the loop is let run to quiescence and each waiter must have ended exactly when the
    model says what it waits for is there. While the worker is blocked, only the loop's face
    acts, as in the middlewares."""

    loop_is = None

    def __init__(self):
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.loop_thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.loop_thread.start()
        self.worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.schedule = CountingSchedule(self.loop)
        self.h = Handoff(self.loop, self.loop_is, max_items=MAX_ITEMS, max_bytes=MAX_BYTES,
                         schedule=self.schedule)
        self.loop_produces = self.loop_is == "producer"
        # the model
        self.next_item = 0
        self.sizes = {}
        self.put_items = []        # accepted by put(), in order
        self.untaken = []
        self.taken = []            # every item taken, in take order
        self.undelivered = []      # taken, not released
        self.held_items = self.held_bytes = 0
        self.phase = Phase.OPEN
        self.outcome = None
        self.wanted = False
        self.loop_waiters = []     # (kind, concurrent future)
        self.thread_waiter = None  # (kind, concurrent future)
        self.steps = 0             # the stream may end after ENDS_AFTER steps of traffic

    # ---- running a step on a side ----

    def _settle(self):
        asyncio.run_coroutine_threadsafe(_spin(20), self.loop).result(HANG)

    def _on_loop(self, fn, *args):
        return asyncio.run_coroutine_threadsafe(_call(fn, *args), self.loop).result(HANG)

    def _on_thread(self, fn, *args):
        return self.worker.submit(fn, *args).result(HANG)

    def _on(self, face, fn, *args):
        loop_side = self.loop_produces == (face == "producer")
        calls = self.schedule.calls
        waiting = bool(self.loop_waiters)
        result = (self._on_loop if loop_side else self._on_thread)(fn, *args)
        self._settle()
        woken = self.schedule.calls - calls
        assert woken <= 1, "%d loop wake-ups for one step" % woken
        assert woken == 0 or (waiting and not loop_side), "the loop was woken for nothing"
        return result

    def _thread_busy(self, face):
        return self.thread_waiter is not None and self.loop_produces != (face == "producer")

    # ---- the model's answers ----

    def _room(self):
        return self.phase is not Phase.OPEN or (
            self.held_items < MAX_ITEMS and self.held_bytes < MAX_BYTES)

    def _drained(self):
        # The low-water mark: a producer waiting for room is woken when a release brings the
        # held items down to half the limits.
        return self.held_items <= MAX_ITEMS // 2 and self.held_bytes <= MAX_BYTES // 2

    def _ready(self, kind):
        if kind in ("take", "take_wait"):
            return bool(self.untaken) or self.phase is not Phase.OPEN
        if kind in ("room", "wait_room"):
            return self.phase is not Phase.OPEN or self._drained()
        return self.wanted or self.phase is not Phase.OPEN

    def _took(self, batch):
        assert batch.items == self.untaken, "a batch is everything put since the last take"
        assert batch.phase is self.phase and batch.count == len(batch.items)
        assert batch.nbytes == sum(self.sizes[i] for i in batch.items)
        if batch.phase is not Phase.OPEN:
            assert batch.outcome == self.outcome
        self.taken += batch.items
        self.undelivered += batch.items
        self.untaken = []

    def _check_waiters(self):
        if self.thread_waiter is not None:
            kind, fut = self.thread_waiter
            if self._ready(kind):
                result = fut.result(HANG)
                self.thread_waiter = None
                if kind == "take_wait":
                    self._took(result)
                else:
                    assert result is True
            elif kind == "wait_room" and fut.done() and self._room():
                # Woken for another reason (a want()), it found room: it may go on.
                assert fut.result(HANG) is True
                self.thread_waiter = None
            else:
                assert not fut.done(), "%s ended with nothing to end it" % kind
        still = []
        takers = [w for w in self.loop_waiters if w[0] == "take"]
        if takers and self._ready("take"):
            if self.phase is Phase.OPEN:
                done = [w for w in takers if w[1].done()]
                assert len(done) == 1, "%d of %d takers took" % (len(done), len(takers))
                self._took(done[0][1].result())
            else:
                batches = [fut.result(HANG) for _, fut in takers]
                batches.sort(key=lambda b: not b.items)
                self._took(batches[0])
                for batch in batches[1:]:
                    self._took(batch)
        for kind, fut in self.loop_waiters:
            if fut.done() and kind == "take":
                continue
            if kind != "take" and self._ready(kind):
                assert fut.result(HANG) is None
                continue
            if kind == "room" and fut.done() and self._room():
                continue  # woken for another reason, it found room: it may go on
            assert not fut.done(), "%s ended with nothing to end it" % kind
            still.append((kind, fut))
        self.loop_waiters = still

    def _step(self, face, fn, *args):
        result = self._on(face, fn, *args)
        return result

    # ---- producer face ----

    @precondition(lambda self: not self._thread_busy("producer") and self.phase is not Phase.FINISHED)
    @rule(sizes=st.lists(st.integers(0, 4), min_size=1, max_size=4))
    def put(self, sizes):
        for size in sizes:
            if not self._on("producer", self.h.has_room):
                assert not self._room()
                return   # a producer waits for room before it puts
            assert self._room()
            self._put(size)

    def _put(self, size):
        item = self.next_item
        self.next_item += 1
        self.sizes[item] = size
        accepted = self._on("producer", self.h.put, item, size)
        assert accepted == (self.phase is Phase.OPEN)
        if accepted:
            self._record([item], [size])
        self._check_waiters()

    @precondition(lambda self: not self._thread_busy("producer") and self.phase is not Phase.FINISHED)
    @rule(sizes=st.lists(st.integers(0, 4), min_size=1, max_size=3))
    def extend(self, sizes):
        # Several items in one lock round, where the limits have room for all of them.
        if self.held_items + len(sizes) > MAX_ITEMS or self.held_bytes + sum(sizes) >= MAX_BYTES:
            return
        items = list(range(self.next_item, self.next_item + len(sizes)))
        self.next_item += len(sizes)
        accepted = self._on("producer", self.h.extend, items, sum(sizes))
        assert accepted == (self.phase is Phase.OPEN)
        if accepted:
            self._record(items, sizes)
        self._check_waiters()

    def _record(self, items, sizes):
        """The model's side of items the hand-off accepted."""
        for item, size in zip(items, sizes):
            self.sizes[item] = size
            self.put_items.append(item)
            self.untaken.append(item)
            self.held_items += 1
            self.held_bytes += size

    @precondition(lambda self: not self._thread_busy("producer") and self.phase is Phase.FINISHED)
    @rule()
    def put_after_finish(self):
        with pytest.raises(RuntimeError):
            self._on("producer", self.h.put, "late")

    @precondition(lambda self: not self._thread_busy("producer") and self.steps >= ENDS_AFTER)
    @rule(outcome=st.sampled_from([None, "error"]), last=st.lists(st.integers(0, 4), max_size=1))
    def finish(self, outcome, last=()):
        # With ``last``: an item put together with the end, in the same lock round (after
        # waiting for room, as before a put).
        if last and self.phase is Phase.OPEN and not self._on("producer", self.h.has_room):
            assert not self._room()
            last = []
        if last and self.phase is Phase.FINISHED:
            with pytest.raises(RuntimeError):
                self._on("producer", self.h.finish, outcome, ["late"], 1, 1)
            return
        items = list(range(self.next_item, self.next_item + len(last)))
        self.next_item += len(last)
        taken = self._on("producer", self.h.finish, outcome, items, sum(last), len(last))
        assert taken == (self.phase is not Phase.CLOSED)
        if self.phase is Phase.OPEN:
            self._record(items, last)
            self.phase = Phase.FINISHED
            self.outcome = outcome
        self._check_waiters()

    @precondition(lambda self: not self._thread_busy("producer"))
    @rule()
    def wanted_(self):
        assert self._on("producer", self.h.wanted) == (self.wanted or self.phase is not Phase.OPEN)
        self.wanted = False
        self._check_waiters()

    # A wait that starts with room but above the low-water mark returns at once; one that starts
    # without room ends at the low-water mark. The model starts waits only where the two agree.
    @precondition(lambda self: self._can_wait("producer", "room")
                  and (not self._room() or self._ready("room")))
    @rule()
    def producer_waits_for_room(self):
        self._start_wait("producer", "room")

    @precondition(lambda self: self._can_wait("producer", "demand"))
    @rule()
    def producer_waits_for_demand(self):
        self._start_wait("producer", "demand")

    # ---- consumer face ----

    @precondition(lambda self: not self._thread_busy("consumer"))
    @rule()
    def poll(self):
        batch = self._on("consumer", self.h.poll)
        if self._ready("take"):
            self._took(batch)
        else:
            assert batch is None
        self._check_waiters()

    @precondition(lambda self: self._can_wait("consumer", "take"))
    @rule()
    def consumer_waits(self):
        self._start_wait("consumer", "take")

    @precondition(lambda self: not self._thread_busy("consumer") and self.undelivered)
    @rule(data=st.data())
    def release(self, data):
        n = data.draw(st.integers(1, len(self.undelivered)))
        delivered, self.undelivered = self.undelivered[:n], self.undelivered[n:]
        nbytes = sum(self.sizes[i] for i in delivered)
        self._on("consumer", self.h.release, n, nbytes)
        self.held_items -= n
        self.held_bytes -= nbytes
        self._check_waiters()

    @precondition(lambda self: not self._thread_busy("consumer"))
    @rule()
    def want(self):
        self._on("consumer", self.h.want)
        self.wanted = True
        self._check_waiters()

    @precondition(lambda self: not self._thread_busy("consumer") and self.steps >= ENDS_AFTER)
    @rule(reason=st.sampled_from([None, "gone"]))
    def close(self, reason):
        self._on("consumer", self.h.close, reason)
        if self.phase is not Phase.CLOSED:
            self.phase = Phase.CLOSED
            self.outcome = reason
            self.untaken = []
        self._check_waiters()

    # ---- waits ----

    def _can_wait(self, face, kind):
        """At most two loop tasks wait for the same thing; the thread waits for one thing."""
        if self.loop_produces == (face == "producer"):
            return sum(1 for k, _ in self.loop_waiters if k == kind) < 2
        return self.thread_waiter is None

    def _start_wait(self, face, kind):
        loop_side = self.loop_produces == (face == "producer")
        if loop_side:
            wait = getattr(self.h, kind)
            fut = asyncio.run_coroutine_threadsafe(wait(), self.loop)
            self.loop_waiters.append((kind, fut))
        else:
            thread_kind = {"take": "take_wait", "room": "wait_room", "demand": "wait_demand"}[kind]
            fut = self.worker.submit(before_deadline, getattr(self.h, thread_kind))
            self.thread_waiter = (thread_kind, fut)
        self._settle()
        self._check_waiters()

    # ---- after every step ----

    @invariant()
    def state_matches_the_model(self):
        self.steps += 1
        h = self.h
        assert h.phase is self.phase
        assert (h.held_items, h.held_bytes) == (self.held_items, self.held_bytes)
        assert h.held_items <= MAX_ITEMS
        assert h.held_bytes < MAX_BYTES + 5
        assert self.taken == self.put_items[:len(self.taken)], "taken out of order or twice"

    def teardown(self):
        try:
            if self.phase is not Phase.CLOSED and not self._thread_busy("consumer"):
                if not self._thread_busy("producer"):
                    self.finish(None)
                if self.phase is Phase.FINISHED:
                    self.poll()
                    assert self.taken == self.put_items, "an item was never delivered"
        finally:
            # end every wait: the loop side's terminal step, then stop the threads
            end = self.h.finish if self.loop_produces else self.h.close
            self._on_loop(end)
            for _, fut in self.loop_waiters + ([self.thread_waiter] if self.thread_waiter else []):
                fut.result(HANG)
            self.worker.shutdown()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.loop_thread.join(HANG)
            self.loop.close()


_machine_settings = settings(max_examples=30, stateful_step_count=40, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@_machine_settings
class LoopProduces(HandoffMachine):
    loop_is = "producer"


@_machine_settings
class LoopConsumes(HandoffMachine):
    loop_is = "consumer"


TestHandoffLoopProduces = LoopProduces.TestCase
TestHandoffLoopConsumes = LoopConsumes.TestCase
