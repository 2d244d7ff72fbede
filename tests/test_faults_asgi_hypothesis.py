"""Hypothesis on the whole ASGIMiddleware (issue 7, A->W): random chunkings of the request body
(a ``wsgi.input`` that returns random short reads), random pauses between the app's ``receive()``
calls, random response chunkings (empty chunks included) and random disconnect points, from the
input (it fails or ends early) or from the server (it closes the iterable after k chunks).

The bytes the app sees and the bytes the server gets are exactly the bytes sent, in order, or the
documented outcome: ``http.disconnect`` after a prefix of the body (never a truncated body
marked complete) and a 500; ``send()`` raising OSError once the server closed early."""

import asyncio
import random
import threading

from hypothesis import event, given, settings
from hypothesis import strategies as st

from test_asgi_support import Response, make_environ, middlewares, pending_tasks, wait_until  # noqa: F401


class ChoppyInput:
    """``wsgi.input`` whose reads return at most the next of ``sizes`` bytes (cycled); after
    ``limit`` bytes it returns b"" (``fault`` None or "short") or raises OSError ("raise")."""

    def __init__(self, data, sizes, limit, fault):
        self._data = data
        self._sizes = sizes
        self._limit = limit
        self._fault = fault
        self._pos = 0
        self._reads = 0

    def read(self, size=-1):
        if self._pos >= self._limit:
            if self._fault == "raise":
                raise OSError("connection reset by peer")
            return b""
        take = self._sizes[self._reads % len(self._sizes)]
        self._reads += 1
        if size is not None and size >= 0:
            take = min(take, size)
        end = min(self._pos + take, self._limit)
        data = self._data[self._pos:end]
        self._pos = end
        return data


def split(data, sizes):
    """``data`` cut into pieces of the given sizes (cycled; 0 gives an empty piece; at least one
    size is not 0)."""
    pieces = []
    pos = i = 0
    while pos < len(data) or not pieces:
        size = sizes[i % len(sizes)]
        pieces.append(data[pos:pos + size])
        pos += size
        i += 1
    return pieces


@st.composite
def scenarios(draw):
    size = draw(st.one_of(st.integers(0, 3000), st.integers(65_000, 200_000)))
    fault = draw(st.sampled_from([None, None, "short", "raise"])) if size else None
    small = size <= 3000  # tiny reads and chunks only on small bodies: a streamed body in 1-byte
    # reads costs a hop to the loop per READ_AHEAD reads, which is slow, not wrong
    return {
        "size": size,
        "seed": draw(st.integers(0, 2**32)),
        "terminated": draw(st.booleans()),
        "in_sizes": draw(st.lists(st.one_of(st.integers(1, 300), st.integers(1, 70_000)) if small
                                  else st.integers(2_000, 70_000), min_size=1, max_size=6)),
        "fault": fault,
        "fail_at": draw(st.integers(0, size - 1)) if fault else size,
        "pauses": draw(st.lists(st.integers(0, 2), min_size=1, max_size=4)),
        "out_sizes": draw(st.lists(st.one_of(st.integers(0, 40), st.integers(0, 90_000)) if small
                                   else st.one_of(st.just(0), st.integers(2_000, 90_000)),
                                   min_size=1, max_size=6).filter(any)),
        "empty_last": draw(st.booleans()),
        "server_takes": draw(st.one_of(st.none(), st.integers(0, 12))),
    }


def test_bytes_in_order_or_the_documented_outcome(middlewares):
    current = {}
    record = {}

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        sc = current["scenario"]
        messages = record["messages"] = []
        pieces = []
        outcome = "returned early"
        try:
            i = 0
            while True:
                for _ in range(sc["pauses"][i % len(sc["pauses"])]):
                    await asyncio.sleep(0)
                i += 1
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            await send({"type": "http.response.start", "status": 200, "headers": []})
            if messages[-1]["type"] == "http.disconnect":
                outcome = "send after disconnect did not raise"
                return
            pieces = split(b"".join(m["body"] for m in messages), sc["out_sizes"])
            if sc["empty_last"]:
                pieces.append(b"")
            for piece in pieces[:-1]:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                for _ in range(sc["pauses"][len(piece) % len(sc["pauses"])]):
                    await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": pieces[-1]})
            outcome = "completed"
        except OSError:
            outcome = "send raised"
        finally:
            record["pieces"] = [p for p in pieces if p]
            record["outcome"] = outcome  # last: the test thread waits for it, then reads the rest

    mw = middlewares(app)
    threads = []

    @settings(max_examples=150, deadline=None)
    @given(scenarios())
    def run(sc):
        current["scenario"] = sc
        record.clear()
        data = random.Random(sc["seed"]).randbytes(sc["size"])
        stream = ChoppyInput(data, sc["in_sizes"], sc["fail_at"], sc["fault"])
        environ = make_environ("/", "POST", stream, content_length=None if sc["terminated"] else sc["size"])
        if sc["terminated"]:
            environ["wsgi.input_terminated"] = True
        response = Response()
        result = mw(environ, response.start_response)
        try:
            if sc["server_takes"] != 0:
                for chunk in result:
                    if chunk:
                        response.chunks.append(chunk)
                        if sc["server_takes"] is not None and len(response.chunks) >= sc["server_takes"]:
                            break
        finally:
            getattr(result, "close", lambda: None)()
        assert wait_until(lambda: "outcome" in record)  # close() on a disconnect returns at once

        messages = record["messages"]
        event("input %s, %s, server takes %s, app %s" % (
            sc["fault"], "streamed" if sc["size"] > 65536 else "small",
            "all" if sc["server_takes"] is None else "some", record["outcome"]))
        seen = b"".join(m.get("body", b"") for m in messages)
        assert all(m["type"] == "http.request" and m["more_body"] for m in messages[:-1])
        if sc["fault"] is None or (sc["terminated"] and sc["fault"] == "short"):
            expected = data[:sc["fail_at"]]  # a terminated input that ends early is a complete body
            assert messages[-1]["type"] == "http.request" and messages[-1]["more_body"] is False
            assert seen == expected
            assert response.status == "200 OK" and response.error is None
            sent = record["pieces"]
            if sc["server_takes"] is None:
                assert record["outcome"] == "completed"
                assert response.chunks == sent and response.body == expected
            else:
                assert record["outcome"] in ("completed", "send raised")
                assert response.chunks == sent[:sc["server_takes"]]
        else:
            assert messages[-1] == {"type": "http.disconnect"}
            assert seen == data[:len(seen)] and len(seen) <= sc["fail_at"]
            assert record["outcome"] == "send raised"
            # issue 13 rule 13: a short or broken request body is the client's: 400
            assert response.status == "400 Bad Request"
        assert pending_tasks(mw) == []
        threads.append(threading.active_count())

    run()
    assert max(threads) <= threads[0], threads  # no thread left behind by any example
