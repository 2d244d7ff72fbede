"""Issue 13, ASGIMiddleware rules 1-10 and 13: the bridge is invisible. Each rule in process, in
both implementations; the determinism rules run 1,000 times with ``sys.setswitchinterval(1e-6)``
and assert one outcome, with the window between the two threads widened on purpose (a slow
``start_response``, a hook in the hand-off)."""

import asyncio
import gc
import io
import logging
import os
import sys
import threading
import time

import pytest

import a2wsgi._handoff as handoff
from test_asgi_support import (HANG_GUARD, Response, call, make_environ, middlewares,  # noqa: F401
                               on_loop, pending_tasks, read_body, respond, wait_until)

RUNS = 1000


class Boom(Exception):
    pass


@pytest.fixture
def racy():
    """Threads switch as often as the interpreter allows; a2wsgi's error log is muted (the
    outcomes are asserted, not the log lines)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    log = logging.getLogger("a2wsgi")
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = False
        sys.setswitchinterval(old)


def slow_response():
    """A Response whose start_response yields the GIL first: the app runs on meanwhile."""
    response = Response()
    plain = response.start_response

    def start_response(status, headers, exc_info=None):
        time.sleep(0)
        return plain(status, headers, exc_info)

    response.slow_start_response = start_response
    return response


def serve(mw, environ, response=None, take=None):
    """Like ``call``, with a slow start_response; returns the Response."""
    response = response or slow_response()
    result = response.result = mw(environ, response.slow_start_response)
    try:
        for chunk in result:
            if chunk:
                response.chunks.append(chunk)
                if take is not None and len(response.chunks) >= take:
                    break
    except Exception as exc:
        response.error = exc
    finally:
        getattr(result, "close", lambda: None)()
    return response


# ---------------------------------------------------------------- rule 1


@pytest.mark.parametrize("shape", ["raise-before-start", "raise-after-start", "return-after-start",
                                   "return-before-start", "raise-after-yielding"])
def test_rule1_error_before_any_body_message_is_500_every_time(middlewares, racy, shape):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if shape.endswith("before-start"):
            if shape.startswith("raise"):
                raise Boom(shape)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if shape == "raise-after-yielding":
            await asyncio.sleep(0)
        if shape.startswith("raise"):
            raise Boom(shape)

    mw = middlewares(app)
    outcomes = set()
    for _ in range(RUNS):
        r = serve(mw, make_environ("/"))
        exc_type = r.calls[-1][2][0] if r.calls[-1][2] else None
        outcomes.add((r.status, r.body, exc_type, type(r.error)))
    expected = Boom if shape.startswith("raise") else RuntimeError
    assert outcomes == {("500 Internal Server Error", b"Internal Server Error", expected, type(None))}


# ---------------------------------------------------------------- rule 2


@pytest.mark.parametrize("ending", ["raise", "return"])
def test_rule2_chunk_then_error_every_time(middlewares, racy, ending):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        if ending == "raise":
            raise Boom("mid-body")

    mw = middlewares(app)
    outcomes = set()
    for _ in range(RUNS):
        r = serve(mw, make_environ("/"))
        outcomes.add((r.status, r.body, type(r.error), len(r.calls)))
    assert outcomes == {("200 OK", b"part", Boom if ending == "raise" else RuntimeError, 1)}


def test_rule2_chunks_not_yet_taken_are_yielded_first(middlewares):
    """The WSGI thread is held (a hook in the hand-off) until the app has sent three chunks and
    raised: all three still come out, then the error."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        raise Boom("after three")

    r = call(middlewares(app), make_environ("/"))
    assert (r.status, r.chunks, type(r.error)) == ("200 OK", [b"a", b"b", b"c"], Boom)


# ---------------------------------------------------------------- rule 3


@pytest.mark.parametrize("shape", ["one-message", "await-after-last", "stream-then-end"])
def test_rule3_sized_or_stream_decided_by_the_first_body_message(middlewares, racy, shape):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if shape == "stream-then-end":
            await send({"type": "http.response.body", "body": b"he", "more_body": True})
            await send({"type": "http.response.body", "body": b"llo"})
        else:
            await send({"type": "http.response.body", "body": b"hello"})
        if shape == "await-after-last":
            await asyncio.sleep(0)

    mw = middlewares(app)
    kinds = set()
    for _ in range(RUNS):
        r = serve(mw, make_environ("/"))
        assert r.body == b"hello"
        kinds.add(isinstance(r.result, list) and len(r.result))
    assert kinds == ({False} if shape == "stream-then-end" else {1})


def test_rule3_start_response_does_not_wait_for_the_app_task(middlewares):
    """The app's background work waits for start_response: if start_response waited for the
    task, this would hang."""
    started = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await respond(send, b"done")
        while not started.is_set():
            await asyncio.sleep(0.001)

    response = Response()
    plain = response.start_response

    def start_response(status, headers, exc_info=None):
        started.set()
        return plain(status, headers, exc_info)

    mw = middlewares(app)
    result = mw(make_environ("/"), start_response)
    assert list(result) == [b"done"]
    result.close()
    assert pending_tasks(mw) == []


# ---------------------------------------------------------------- rule 4


def test_rule4_close_returns_at_once_and_the_task_goes_on(middlewares):
    gate = threading.Event()
    record = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()  # the (empty) request body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        record.append(await receive())
        try:
            await send({"type": "http.response.body", "body": b"y", "more_body": True})
        except OSError as exc:
            record.append(type(exc).__name__)
        while not gate.is_set():  # close() must not wait for this
            await asyncio.sleep(0.001)
        record.append("ended")

    mw = middlewares(app)
    result = mw(make_environ("/"), lambda *a: None)
    assert next(iter(result)) == b"x"
    result.close()
    assert wait_until(lambda: len(record) >= 2)
    assert record == [{"type": "http.disconnect"}, "ClientDisconnected"]
    gate.set()
    assert wait_until(lambda: record[-1] == "ended")
    assert pending_tasks(mw) == []


def test_rule4_wait_time_cancels_after_a_disconnect(middlewares):
    record = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        try:
            await asyncio.Future()  # the next event never comes
        except asyncio.CancelledError:
            record.append("cancelled")
            raise

    mw = middlewares(app, wait_time=0.05)
    call(mw, make_environ("/"), max_chunks=1)
    assert wait_until(lambda: record == ["cancelled"])
    assert pending_tasks(mw) == []


def _streaming_generator_app(finalized):
    pytest.importorskip("starlette", reason="Starlette is in the test extra (the main CI stage), not test-core")
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def events():
        try:
            n = 0
            while True:
                yield b"event %d\n" % n
                n += 1
                await asyncio.sleep(0.001)
        finally:
            finalized.append(time.monotonic())

    async def endpoint(request):
        return StreamingResponse(events(), media_type="text/plain")

    return Starlette(routes=[Route("/", endpoint)])


@pytest.mark.parametrize("wait_time", [None, 5.0])
def test_rule4_streaming_finally_runs_without_the_garbage_collector(middlewares, wait_time):
    finalized = []
    mw = middlewares(_streaming_generator_app(finalized), wait_time=wait_time)
    assert call(mw, make_environ("/"), max_chunks=2).chunks[:1] == [b"event 0\n"]  # warm-up
    assert wait_until(lambda: len(finalized) == 1)
    idle = len(pending_tasks(mw))
    gc.collect()
    gc.disable()
    try:
        for n in range(5):
            left = time.monotonic()
            call(mw, make_environ("/"), max_chunks=3)
            assert wait_until(lambda: len(finalized) == n + 2, timeout=5.0)
            assert finalized[-1] - left < 1.0, "the generator's finally waited for something"
            assert wait_until(lambda: len(pending_tasks(mw)) == idle)
    finally:
        gc.enable()


@pytest.mark.refcounting
def test_rule4_no_cycle_keeps_a_failed_request_alive(middlewares):
    """An app error after a chunk (the error is raised through the WSGI thread) leaves nothing
    that only the cyclic collector could free."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise Boom("mid-body")

    mw = middlewares(app)

    def serve_once():  # no ``except ... as``: this frame keeps no reference to the error
        result = mw(make_environ("/"), lambda *a: None)
        try:
            for _ in result:
                pass
        except Boom:
            pass
        else:
            raise AssertionError("the error was not raised from the iterable")
        finally:
            result.close()

    serve_once()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            serve_once()
        assert wait_until(lambda: pending_tasks(mw) == [])
        gc.collect()
        calls = [o for o in gc.garbage if type(o).__name__ == "_ASGICall"]
        assert calls == [], "a request stayed alive in a reference cycle"
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


# ---------------------------------------------------------------- rule 5


def test_rule5_iteration_ends_at_the_last_body_message(middlewares):
    """The background work waits until the server has seen the end of the iteration."""
    iterated = threading.Event()
    record = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})
        while not iterated.is_set():
            await asyncio.sleep(0.001)
        record.append("background done")

    mw = middlewares(app)
    result = mw(make_environ("/"), lambda *a: None)
    assert list(result) == [b"a", b"b"]
    iterated.set()
    result.close()  # waits for the background work (wait_time None)
    assert record == ["background done"]


def test_rule5_wait_time_is_a_deadline_from_the_last_body_message(middlewares, asgi_mode, monkeypatch):
    ended = []
    deadlines = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"%d" % i, "more_body": True})
        ended.append(time.monotonic())
        await send({"type": "http.response.body", "body": b"end"})
        await asyncio.Future()  # background work that never ends

    import a2wsgi._runtime as runtime_mod
    import a2wsgi.asgi as mod

    # the thread's waits go through the Signal of its mode (inline: the loop-driving one)
    owner, name = (runtime_mod, "LoopSignal") if asgi_mode == "inline" else (mod, "Signal")
    plain = getattr(owner, name)

    class RecordingSignal(plain):
        __slots__ = ()

        def wait(self, deadline=None):
            if deadline is not None and ended:  # not lifespan startup's (inline mode waits on one)
                deadlines.append(deadline)
            return super().wait(deadline)

    monkeypatch.setattr(owner, name, RecordingSignal)
    monkeypatch.setattr(mod, "_thread_signals", threading.local())  # threads make a RecordingSignal
    mw = middlewares(app, wait_time=0.2)
    result = mw(make_environ("/"), lambda *a: None)
    for chunk in result:
        time.sleep(0.05)  # a slow server: 6 chunks take longer than wait_time
    result.close()
    assert deadlines and max(deadlines) <= ended[0] + 0.2 + 0.01
    assert wait_until(lambda: pending_tasks(mw) == [])


# ---------------------------------------------------------------- rule 6


def test_rule6_two_tasks_sending_at_once_never_hang(middlewares):
    """A feed and a heartbeat (sse-starlette's shape) both send while the buffer is full."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def sender(tag):
            for i in range(300):
                await send({"type": "http.response.body", "body": b"%s%d;" % (tag, i), "more_body": True})

        await asyncio.gather(sender(b"f"), sender(b"h"), sender(b"x"))
        await send({"type": "http.response.body", "body": b""})

    mw = middlewares(app)
    for _ in range(5):
        r = call(mw, make_environ("/"), on_chunk=lambda r: time.sleep(0.0001) if len(r.chunks) % 50 == 0 else None)
        parts = r.body.decode().rstrip(";").split(";")
        assert len(parts) == 900
        for tag in "fhx":
            mine = [int(p[1:]) for p in parts if p[0] == tag]
            assert mine == list(range(300))


def test_rule6_calls_go_out_in_call_order(middlewares):
    """Sends issued while an earlier one waits for room go out after it."""
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        tasks = [asyncio.ensure_future(send({"type": "http.response.body", "body": b"%04d" % i,
                                             "more_body": True})) for i in range(200)]
        await asyncio.gather(*tasks)
        await send({"type": "http.response.body", "body": b""})

    r = call(middlewares(app), make_environ("/"))
    assert r.body == b"".join(b"%04d" % i for i in range(200))


def test_rule6_senders_and_receivers_woken_by_disconnect(middlewares):
    record = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def sender():
            try:
                while True:
                    await send({"type": "http.response.body", "body": b"z" * 1000, "more_body": True})
            except OSError:
                record.append("send")

        async def receiver():
            while (await receive())["type"] != "http.disconnect":
                pass
            record.append("receive")

        await asyncio.gather(sender(), sender(), receiver(), receiver())

    mw = middlewares(app)
    for _ in range(20):
        del record[:]
        call(mw, make_environ("/"), max_chunks=3)
        assert wait_until(lambda: len(record) == 4)
        assert sorted(record) == ["receive", "receive", "send", "send"]
    assert pending_tasks(mw) == []


# ---------------------------------------------------------------- rule 7


@pytest.mark.parametrize("size, limit", [(10, "chunks"), (256 * 1024, "bytes")])
def test_rule7_at_most_16_chunks_and_1_mib_held(middlewares, asgi_mode, size, limit):
    sent = [0]
    chunk = b"c" * size

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(200 if limit == "chunks" else 40):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent[0] += 1
        await send({"type": "http.response.body", "body": b""})

    held = []

    def on_chunk(r):
        time.sleep(0.001)  # a slow server: the app runs as far ahead as it may
        held.append(sent[0] - len(r.chunks))

    r = call(middlewares(app), make_environ("/"), on_chunk=on_chunk)
    assert len(r.body) == sent[0] * size
    # Measured after each yield. On the loop thread the app refills while the server writes, so
    # the bound itself is seen; inline, the app runs only while the thread waits (its chunks all
    # yielded), so it is seen one chunk below the bound: the full bound, then the first yield.
    below = 1 if asgi_mode == "inline" else 0
    if limit == "chunks":
        assert max(held) == 16 - below
    else:
        assert max(held) * size == 1024 * 1024 - below * size


def test_rule7_credit_goes_back_when_yielded_in_two_lumps_per_batch(middlewares, monkeypatch):
    """Each chunk's credit goes back once it is yielded (rule 7 counts it until then), but in
    lumps: at most two releases per batch the WSGI thread takes (half its chunks yielded, then
    all), and every chunk's credit is back when the body is done."""
    from a2wsgi import asgi

    takes, releases = [], []
    poll, release = handoff.Handoff.poll, handoff.Handoff.release

    def response_side(h):
        return h.max_items == asgi.HELD_CHUNKS

    def counting_poll(self):
        batch = poll(self)
        if response_side(self) and batch is not None and batch.items:
            takes.append(batch.count)
        return batch

    def counting_release(self, count, nbytes=0):
        if response_side(self):
            releases.append((count, nbytes, self.held_items - count))
        release(self, count, nbytes)

    monkeypatch.setattr(handoff.Handoff, "poll", counting_poll)
    monkeypatch.setattr(handoff.Handoff, "release", counting_release)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(100):
            await send({"type": "http.response.body", "body": b"%03d" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    yielded = []
    r = call(middlewares(app), make_environ("/"),
             on_chunk=lambda r: yielded.append(sum(n for n, _, _ in releases)))
    assert r.body == b"".join(b"%03d" % i for i in range(100))
    assert sum(n for n, _, _ in releases) == 100 and sum(b for _, b, _ in releases) == 300
    assert len(releases) <= 2 * len([n for n in takes if n])
    # released when yielded, never before: after the k-th chunk reached the server, at most k
    assert all(done <= k for k, done in enumerate(yielded, 1))
    assert releases[-1][2] == 0


# ---------------------------------------------------------------- rule 8


def test_rule8_file_opened_before_send_returns(middlewares, tmp_path):
    path = tmp_path / "gone-after-send.bin"

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        path.write_bytes(b"payload " * 1000)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})
        os.unlink(path)  # the file is open: the response still has it

    mw = middlewares(app)
    for _ in range(20):
        r = call(mw, make_environ("/"))
        assert r.status == "200 OK" and r.body == b"payload " * 1000


def test_rule8_starlette_fileresponse_deleting_its_file(middlewares, tmp_path):
    pytest.importorskip("starlette", reason="Starlette is in the test extra (the main CI stage), not test-core")
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import FileResponse
    from starlette.routing import Route

    counter = [0]

    async def download(request):
        counter[0] += 1
        path = tmp_path / ("tmp-%d.txt" % counter[0])
        path.write_bytes(b"temporary %d" % counter[0])
        return FileResponse(path, background=BackgroundTask(os.unlink, path))

    mw = middlewares(Starlette(routes=[Route("/", download)]))
    for n in range(1, 21):
        r = call(mw, make_environ("/"))
        assert r.status == "200 OK" and r.body == b"temporary %d" % n
    # the background task runs after the response (the server's file_wrapper has the open file)
    assert wait_until(lambda: list(tmp_path.iterdir()) == [])


def test_rule8_pathsend_after_a_chunk_is_refused_every_time(middlewares, racy, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"file")
    refused = []

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"chunk", "more_body": True})
        try:
            await send({"type": "http.response.pathsend", "path": str(path)})
        except RuntimeError as exc:
            refused.append(str(exc))
            raise

    mw = middlewares(app)
    outcomes = set()
    for _ in range(RUNS):
        r = serve(mw, make_environ("/"))
        outcomes.add((r.status, r.body, type(r.error)))
    assert outcomes == {("200 OK", b"chunk", RuntimeError)}
    assert len(refused) == RUNS and "pathsend sent after http.response.body" in refused[0]


# ---------------------------------------------------------------- rule 9


def concurrent_rw_app():
    """Upstream a2wsgi's ``concurrent_rw`` test app: it ignores scope["type"]; one task loops on
    receive() while another sends http.response.start and a body."""
    async def app(scope, receive, send):
        async def reader():
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return

        async def writer():
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"concurrent"})

        read = asyncio.ensure_future(reader())
        try:
            await writer()
        finally:
            read.cancel()

    return app


def test_rule9_concurrent_rw_app_is_served(middlewares, asgi_mode):
    mw = middlewares(concurrent_rw_app())
    results = []

    def four():
        if asgi_mode == "inline":  # one request at a time
            for _ in range(4):
                results.append(call(mw, make_environ("/")).body)
            return
        threads = [threading.Thread(target=lambda: results.append(call(mw, make_environ("/")).body))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG_GUARD)

    four()
    assert results == [b"concurrent"] * 4
    assert mw._runtime.startup.name == "UNSUPPORTED"


@pytest.mark.parametrize("shape", ["raise", "return", "other-message-from-a-task"])
def test_rule9_unsupported_lifespan_shapes(middlewares, shape):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            if shape == "raise":
                raise Boom("no lifespan")
            if shape == "return":
                return
            asyncio.ensure_future(send({"type": "http.response.start", "status": 200}))
            await asyncio.Future()  # the main task waits forever
        await respond(send, b"ok")

    mw = middlewares(app)
    assert call(mw, make_environ("/")).body == b"ok"
    assert mw._runtime.startup.name == "UNSUPPORTED"


def test_rule9_startup_timeout_fails_requests_fast(middlewares, asgi_mode, monkeypatch, caplog):
    import a2wsgi._runtime as runtime_mod

    monkeypatch.setattr(runtime_mod, "STARTUP_TIMEOUT", 0.2)

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            await asyncio.Future()  # startup never completes
        await respond(send, b"never")

    mw = middlewares(app)
    results = []
    waiting = 1 if asgi_mode == "inline" else 3  # inline: one request at a time
    threads = [threading.Thread(target=lambda: results.append(call(mw, make_environ("/")).status))
               for _ in range(waiting)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_GUARD)
    assert results == ["500 Internal Server Error"] * waiting
    assert call(mw, make_environ("/later")).status == "500 Internal Server Error"
    assert "lifespan startup did not complete within 0.2 s" in caplog.text
    assert "GET /later: not served: ASGI lifespan startup" in caplog.text


def test_rule9_lifespan_task_held_by_a_strong_reference(middlewares):
    release = threading.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            await receive()
            while not release.is_set():
                await asyncio.sleep(0.001)
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await respond(send, b"ok")

    mw = middlewares(app)
    results = []
    t = threading.Thread(target=lambda: results.append(call(mw, make_environ("/")).body))
    t.start()
    assert wait_until(lambda: mw._runtime is not None and mw._runtime._lifespan_task is not None)
    for _ in range(3):
        gc.collect()
    release.set()
    t.join(HANG_GUARD)
    assert results == [b"ok"] and mw._runtime.startup.name == "COMPLETE"


# ---------------------------------------------------------------- rule 10


def test_rule10_trailers_without_the_extension(middlewares, caplog):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"body", "more_body": True})
        await send({"type": "http.response.body", "body": b"!"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"1")],
                    "more_trailers": False})

    mw = middlewares(app)
    with caplog.at_level(logging.WARNING, logger="a2wsgi"):
        for _ in range(3):
            r = call(mw, make_environ("/"))
            assert (r.status, r.body, r.error) == ("200 OK", b"body!", None)
    warnings = [rec for rec in caplog.records if "trailers" in rec.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


def test_rule10_unknown_message_is_still_a_clear_error(middlewares):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.push", "path": "/x"})

    r = call(middlewares(app), make_environ("/"))
    assert r.status.startswith("500 ") and "http.response.push" in str(r.calls[-1][2][1])


# ---------------------------------------------------------------- rule 13


class GenerousInput:
    """A stream that returns more than asked, and counts what it gave."""

    def __init__(self, data):
        self.data = data
        self.given = 0

    def read(self, size=-1):
        piece = self.data[self.given:self.given + max(size, 0) * 2 + 10]
        self.given += len(piece)
        return piece


@pytest.mark.parametrize("length", [100, 200_000])
def test_rule13_never_past_content_length(middlewares, length):
    async def echo(scope, receive, send):
        if scope["type"] != "http":
            return
        body, _ = await read_body(receive)
        await respond(send, body)

    stream = GenerousInput(b"b" * length + b"EXTRA" * 100_000)
    r = call(middlewares(echo), make_environ("/", "POST", stream, content_length=length))
    assert r.body == b"b" * length


def test_rule13_short_body_and_app_ending_on_disconnect_is_400(middlewares, caplog):
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body, messages = await read_body(receive)
        if body is None:
            return  # told http.disconnect: no response
        await respond(send, body)

    mw = middlewares(app)
    for length, sent in ((100, 40), (300_000, 100_000)):
        r = call(mw, make_environ("/", "POST", io.BytesIO(b"s" * sent), content_length=length))
        assert r.status == "400 Bad Request" and r.calls[-1][2] is None
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]


def test_hook_widened_window_put_then_finish(middlewares, monkeypatch, racy):
    """A hook after every hand-off step yields the GIL: the WSGI thread runs between the loop's
    put of the last chunk and its finish; the outcome does not change."""
    def hook(h, point):
        time.sleep(0)

    monkeypatch.setattr(handoff, "hook", hook)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"1", "more_body": True})
        await send({"type": "http.response.body", "body": b"2", "more_body": False})

    mw = middlewares(app)
    outcomes = set()
    for _ in range(RUNS // 4):
        r = serve(mw, make_environ("/"))
        outcomes.add((r.status, r.body, r.error, isinstance(r.result, list)))
    assert outcomes == {("200 OK", b"12", None, False)}


def test_rule4_disconnect_seen_through_the_hand_off_is_never_an_error(middlewares, monkeypatch, caplog):
    """A hook delays close()'s message to the loop, so that the app's send() finds the hand-off
    closed first: the ClientDisconnected it raises is still the client's disconnect, logged at
    debug level, every time."""
    def hook(h, point):
        if point == "close":
            time.sleep(0.002)

    monkeypatch.setattr(handoff, "hook", hook)

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while True:
            await send({"type": "http.response.body", "body": b"tick", "more_body": True})
            await asyncio.sleep(0)

    mw = middlewares(app)
    with caplog.at_level(logging.DEBUG, logger="a2wsgi"):
        for _ in range(200):
            call(mw, make_environ("/"), max_chunks=2)
        assert wait_until(lambda: pending_tasks(mw) == [])
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sum("ended on the client's disconnect" in r.getMessage() for r in caplog.records) == 200
