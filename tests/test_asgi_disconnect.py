"""Client disconnect (the server closes the iterable early) and ``wait_time`` (ASGI HTTP spec
2.4+: ``receive`` gives ``http.disconnect``, ``send`` raises ``OSError``)."""

import asyncio
import threading

import pytest

from test_asgi_support import (HANG_GUARD, call, make_environ, middlewares, pending_tasks, respond,  # noqa: F401
                               wait_until)


def settled(mw, record, count=1):
    """close() returns at once on a disconnect (rule 4): wait for the app task to see it and end."""
    assert wait_until(lambda: len(record) >= count and pending_tasks(mw) == [])


def streaming_app(record, listen=False):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def listener():
            record.append(await receive())

        task = asyncio.ensure_future(listener()) if listen else None
        try:
            for i in range(100_000):
                await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
                await asyncio.sleep(0)
        except OSError as exc:
            record.append(exc)
            if task is not None:
                await asyncio.wait_for(task, HANG_GUARD)
            raise
        record.append("not disconnected")

    return app


def test_close_early_send_raises_oserror_and_task_ends(middlewares):
    record = []
    mw = middlewares(streaming_app(record))
    response = call(mw, make_environ("/"), max_chunks=3)
    assert len(response.chunks) == 3
    settled(mw, record)
    assert isinstance(record[0], OSError)
    assert pending_tasks(mw) == []


def test_close_early_pending_receive_gets_disconnect(middlewares):
    record = []
    mw = middlewares(streaming_app(record, listen=True))
    call(mw, make_environ("/"), max_chunks=5)
    settled(mw, record, 2)
    assert {"type": "http.disconnect"} in record
    assert any(isinstance(r, OSError) for r in record)
    assert pending_tasks(mw) == []


def test_close_while_send_waits_for_room(middlewares):
    import a2wsgi.asgi as mod

    record = []
    blocked = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(mod.HELD_CHUNKS * 10):
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
        except OSError as exc:
            record.append(exc)
            raise

    mw = middlewares(app)
    result = mw(make_environ("/"), lambda s, h, e=None: None)
    next(iter(result))
    result.close()
    settled(mw, record)
    assert isinstance(record[0], OSError)
    assert pending_tasks(mw) == []
    del blocked


def test_close_before_iterating(middlewares):
    record = []
    mw = middlewares(streaming_app(record))
    result = mw(make_environ("/"), lambda s, h, e=None: None)
    result.close()
    settled(mw, record)
    assert isinstance(record[0], OSError)
    assert pending_tasks(mw) == []


def test_disconnect_is_not_logged_as_an_error(middlewares, caplog):
    record = []
    mw = middlewares(streaming_app(record))
    call(mw, make_environ("/"), max_chunks=2)
    settled(mw, record)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def background_app(record, seconds):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await respond(send, b"body first")
        try:
            await asyncio.sleep(seconds)
            record.append("background done")
        except asyncio.CancelledError:
            record.append("cancelled")
            raise

    return app


def test_wait_time_none_waits_for_background_work(middlewares):
    record = []
    response = call(middlewares(background_app(record, 0.05)), make_environ("/"))
    assert response.body == b"body first"
    assert record == ["background done"]  # before the WSGI call returned


def test_wait_time_bounds_background_work_then_cancels(middlewares):
    record = []
    mw = middlewares(background_app(record, 60), wait_time=0.05)
    response = call(mw, make_environ("/"))
    assert response.body == b"body first"
    assert response.error is None
    assert wait_until(lambda: record)
    assert record == ["cancelled"]
    assert pending_tasks(mw) == []


@pytest.mark.parametrize("wait_time", [None, 0.5])
def test_nothing_pending_after_many_disconnects(middlewares, wait_time):
    record = []
    mw = middlewares(streaming_app(record), wait_time=wait_time)
    for n in range(30):
        call(mw, make_environ("/"), max_chunks=1 + n % 4)
    settled(mw, record, 30)
    assert len([r for r in record if isinstance(r, OSError)]) == 30
    assert pending_tasks(mw) == []
