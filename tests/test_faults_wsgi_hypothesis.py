"""Hypothesis on the whole WSGIMiddleware (issue 7, W->A): random chunkings of the request body
(``more_body`` messages, empty ones included), random reads in the app (``read(n)``, ``read()``,
``readline(limit)``, iteration), random response shapes and chunkings (list, generator, ``write()``
then either), and random disconnect points (``http.disconnect`` during the upload or the
response, ``send()`` raising OSError). The read-ahead limits are made small, so that pausing and
resuming the reader happens in most examples.

The bytes the app sees and the bytes the client gets are exactly the bytes sent, in order, or the
documented outcome: a prefix of the body and ``ClientDisconnected`` from the read after a
disconnect during the upload (nothing sent); a prefix of the response, never marked complete,
after a disconnect during it. ``close()`` runs exactly once and nothing is left behind."""

import asyncio
import logging
import random
import threading

from hypothesis import event, given, settings
from hypothesis import strategies as st

from test_wsgi_support import HANG_GUARD, Script, http_scope, mw, other_tasks, run, worker_threads  # noqa: F401

READ_AHEAD = 8192


def split(data, sizes):
    """``data`` cut into pieces of the given sizes (cycled; 0 gives an empty piece; at least one
    size is not 0)."""
    pieces = []
    pos = i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        pieces.append(data[pos:pos + size])
        pos += size
        i += 1
    return pieces


_read_ops = st.one_of(
    st.tuples(st.just("read"), st.one_of(st.none(), st.just(-1), st.integers(0, 5000))),
    st.tuples(st.just("readline"), st.one_of(st.just(-1), st.integers(1, 3000))),
    st.tuples(st.just("iter"), st.integers(1, 5)),
)


@st.composite
def scenarios(draw):
    size = draw(st.one_of(st.integers(0, 3000), st.integers(20_000, 120_000)))
    small = size <= 3000
    # tiny pieces only on small bodies: 1-byte messages of a 100 KB body are slow, not wrong
    big = st.one_of(st.just(0), st.integers(1000, 30_000))
    in_sizes = draw(st.lists(st.integers(0, 400) if small else big, min_size=1, max_size=5).filter(any))
    out_sizes = draw(st.lists(st.integers(0, 400) if small else big, min_size=1, max_size=5).filter(any))
    messages = len(split(b"x" * size, in_sizes)) + 1
    return {
        "size": size,
        "seed": draw(st.integers(0, 2**32)),
        "newlines": draw(st.booleans()),
        "in_sizes": in_sizes,
        "ops": draw(st.lists(_read_ops, min_size=1, max_size=4).filter(
            lambda ops: any(op != ("read", 0) for op in ops))),
        "shape": draw(st.sampled_from(["list", "generator", "write+list", "write+generator"])),
        "out_sizes": out_sizes,
        "fault": draw(st.sampled_from([None, None, "upload", "send", "stream"])),
        "at": draw(st.integers(0, messages - 1)),
        "send_queue_size": draw(st.integers(1, 4)),
    }


def make_data(sc):
    rng = random.Random(sc["seed"])
    data = rng.randbytes(sc["size"])
    if sc["newlines"]:
        data = data.replace(b"\x00", b"\n").replace(b"\x01", b"\n")
    return data


def test_bytes_in_order_or_the_documented_outcome(mw, monkeypatch):
    import a2wsgi.wsgi as wsgi

    monkeypatch.setattr(wsgi, "READ_AHEAD_BYTES", READ_AHEAD)
    monkeypatch.setattr(wsgi, "STREAMING_READ_AHEAD_BYTES", 2 * READ_AHEAD)
    current = {}
    record = {}

    def consume(stream, ops):
        """Reads until the end with the ops cycled; returns the pieces read."""
        seen = []
        i = 0
        while True:
            op, arg = ops[i % len(ops)]
            i += 1
            if op == "read":
                data = stream.read(arg) if arg is not None or i % 2 else stream.read()
                if arg == 0:
                    continue
            elif op == "readline":
                data = stream.readline(arg)
            else:
                data = b"".join(line for _, line in zip(range(arg), stream))
            if not data:
                return seen
            seen.append(data)

    class Response:
        def __init__(self, pieces):
            self.pieces = pieces

        def __iter__(self):
            for piece in self.pieces:
                yield piece

        def close(self):
            record["closes"] = record.get("closes", 0) + 1

    def app(environ, start_response):
        sc = current["scenario"]
        seen = record["seen"] = []
        try:
            seen.extend(consume(environ["wsgi.input"], sc["ops"]))
        except OSError as exc:
            record["read error"] = exc
            raise
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        pieces = split(b"".join(seen), sc["out_sizes"])
        if sc["shape"].startswith("write+"):
            half = len(pieces) // 2
            try:
                for piece in pieces[:half]:
                    write(piece)
            except OSError as exc:
                record["write error"] = exc
                raise
            pieces = pieces[half:]
        if sc["shape"].endswith("list"):
            return list(pieces)
        record["closes"] = 0
        return Response(pieces)

    middleware = mw(app)
    log = logging.getLogger("a2wsgi")
    errors = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append
    log.addHandler(handler)
    others = []
    outcomes = []

    @settings(max_examples=150, deadline=None)
    @given(scenarios())
    def check(sc):
        current["scenario"] = sc
        record.clear()
        middleware.send_queue_size = sc["send_queue_size"]
        data = make_data(sc)
        pieces = split(data, sc["in_sizes"])
        messages = [{"type": "http.request", "body": p, "more_body": True} for p in pieces]
        messages.append({"type": "http.request", "body": b"", "more_body": False})
        fault, at = sc["fault"], sc["at"]
        if fault == "upload":
            messages[at:] = [{"type": "http.disconnect"}]
        fail = [0]
        sends = []

        def on_send(message):
            if message["type"] == "http.response.body" and message.get("body"):
                sends.append(message)
                if fault == "stream" and len(sends) == at + 1:
                    script.disconnect()

        script = Script(messages, on_send=on_send)
        plain_send = script.send

        async def send(message):
            if fault == "send" and len(script.sent) >= at:
                fail[0] += 1
                raise OSError("scripted client went away")
            await plain_send(message)

        async def go():
            await middleware(http_scope(method="POST"), script.receive, send)
            assert other_tasks() == set()

        run(go())
        seen = b"".join(record.get("seen", ()))
        got = script.body
        complete = script.complete
        event("fault %s, %s body, %s" % (fault, "small" if sc["size"] <= 3000 else "streamed", sc["shape"]))

        assert seen == data[:len(seen)], "the app saw bytes out of order"
        assert got == data[:len(got)], "the client got bytes out of order"
        assert fail[0] <= 1, "send() was called again after it raised"
        if fault == "upload":
            if not record:
                # a body that fits the read-ahead is read before a worker is taken: cut short,
                # the app never runs (issue 13, rule 14)
                import a2wsgi.wsgi
                assert sum(len(p) for p in pieces[:at]) < a2wsgi.wsgi.READ_AHEAD_BYTES
            else:
                assert type(record["read error"]).__name__ == "ClientDisconnected"
                assert len(seen) <= sum(len(p) for p in pieces[:at])
            assert script.sent == []
        else:
            assert seen == data and "read error" not in record
            if sc["shape"].endswith("generator") and "write error" not in record:
                assert record["closes"] == 1
            if fault is None:
                assert script.status == 200 and complete and got == data
            elif complete:
                assert got == data
            if fault == "send" and fail[0]:
                assert not complete
        assert errors == [], [r.getMessage() for r in errors]
        others.append(threading.active_count() - len(worker_threads()))
        outcomes.append((fault, sc["size"] > 3000, complete, "read error" in record))
        assert len(worker_threads()) <= middleware.workers

    try:
        check()
    finally:
        log.removeHandler(handler)
    assert max(others) <= others[0], others
    assert len(outcomes) >= 100 and {o[0] for o in outcomes} == {None, "upload", "send", "stream"}

    async def settled():
        for _ in range(int(HANG_GUARD * 1000)):
            if middleware._pool.threads == middleware._pool._idle:
                return True
            await asyncio.sleep(0.001)
        return False

    assert run(settled())
