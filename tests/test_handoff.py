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
