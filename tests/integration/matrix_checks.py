"""The checks every row of the server matrix runs against a real server process (test_matrix_*.py).

A row names a server, how to start it, and what it supports; ``ROWS`` of each test module is the
source of README's "Tested servers" table (tests/integration/test_matrix_readme.py compares them).
"""

import http.client
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

CHUNK = bytes(range(256)) * 256
MIB = 1 << 20
# Implementation under test, chosen in the server's environment; the slow rows run once, in the
# first pass of tests/run.py (the A2WSGI_PURE=1 pass skips them: they already ran pure here).
MODES = ("compiled", "pure")
PURE_ONLY_PASS = os.environ.get("A2WSGI_PURE", "").strip().lower() not in ("", "0", "false", "no")


def mode_params(names):
    return [pytest.param((name, mode), id="%s-%s" % (name, mode),
                         marks=[pytest.mark.c_extension] if mode == "compiled" else [])
            for name in names for mode in MODES]


def skip_without(modules):
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip("not installed: %s (pip install -e '.[test,test-servers]')" % ", ".join(missing))


def mode_env(mode, markers):
    return {"A2WSGI_PURE": "1" if mode == "pure" else "0", "A2WSGI_MARKERS": markers}


class Target:
    """A running server: host, port, path prefix, the marker directory and the server's pid."""

    def __init__(self, port, prefix, markers, pid, mode):
        self.port, self.prefix, self.markers, self.pid, self.mode = port, prefix, markers, pid, mode

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        own = conn is None
        conn = conn or self.conn()
        try:
            conn.request(method, self.prefix + path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            if own:
                conn.close()

    def wait_marker(self, name, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(os.path.join(self.markers, name)):
                return True
            time.sleep(0.02)
        return False


def header(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def check_get(t):
    status, headers, body = t.request("GET", "/hello")
    assert (status, body) == (200, b"hello")
    assert header(headers, "X-A2WSGI-Speedups") == str(t.mode == "compiled")
    return headers


def check_post_echo(t):
    payload = os.urandom(MIB)
    status, _, body = t.request("POST", "/echo", body=payload,
                                headers={"Content-Type": "application/octet-stream"})
    assert status == 200 and len(body) == len(payload) and body == payload


def check_chunked_upload(t):
    pieces = [os.urandom(1000 + i) for i in range(50)]
    conn = t.conn()
    try:
        conn.request("POST", t.prefix + "/echo", body=iter(pieces), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked", "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 200 and body == b"".join(pieces)


def _tree_rss(pid):
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _settled_tree_rss(pid, limit=15.0):
    """The tree's RSS once it holds still for half a second (or after ``limit`` seconds): a
    server can accept connections before its workers have imported the app (uWSGI's ``--http``
    router does), and that import must not count as growth over the download."""
    deadline = time.monotonic() + limit
    last = _tree_rss(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _tree_rss(pid)
        if abs(now - last) < MIB:
            return now
        last = now
    return last


def download_rss_growth(t, mib=64):
    """Download ``mib`` MiB, pausing after the first MiB so a server that buffers gets the time to;
    return the growth of the server's RSS (its process tree) over the download, in bytes, from
    the RSS after a 1 MiB warm-up download, once it settled."""
    status, _, body = t.request("GET", "/download?mib=1")
    assert status == 200 and len(body) == MIB, (status, len(body))
    before = _settled_tree_rss(t.pid)
    peak = [before]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.05):
            peak[0] = max(peak[0], _tree_rss(t.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    conn = t.conn(timeout=120)
    try:
        conn.request("GET", t.prefix + "/download?mib=%d" % mib)
        resp = conn.getresponse()
        assert resp.status == 200
        got = len(resp.read(MIB))
        time.sleep(1.0)  # a server that buffers the whole body reads it from the app now
        peak[0] = max(peak[0], _tree_rss(t.pid))
        while True:
            data = resp.read(4 * MIB)
            if not data:
                break
            got += len(data)
    finally:
        stop.set()
        sampler.join()
        conn.close()
    assert got == mib * MIB
    return peak[0] - before


def check_download_bounded(t, mib=64):
    """Bounded: the server grows by well under the body (waitress alone holds up to its 16 MiB
    outbuf_high_watermark per connection); a server that buffers the whole body grows by 64 MiB."""
    growth = download_rss_growth(t, mib)
    assert growth < 40 * MIB, "the server grew by %.1f MiB for a %d MiB download" % (growth / MIB, mib)


def check_error_then_reuse(t):
    """An app error, then a second request on the same connection: it succeeds, or the error
    response said Connection: close; never a reset."""
    conn = t.conn()
    try:
        conn.request("GET", t.prefix + "/error")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 500
        if (resp.getheader("Connection") or "").lower() == "close":
            return "closed"
        conn.request("GET", t.prefix + "/hello")
        second = conn.getresponse()
        assert (second.status, second.read()) == (200, b"hello")
        return "reused"
    finally:
        conn.close()


def check_client_leaves_endless(t, within=2.0):
    ident = uuid.uuid4().hex
    conn = t.conn()
    conn.request("GET", t.prefix + "/endless?id=" + ident)
    sock = conn.sock  # the response takes it over when the server will close the connection
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read(40)
    sock.shutdown(socket.SHUT_RDWR)
    resp.close()
    conn.close()
    assert t.wait_marker("finally-" + ident, within), "the app's finally did not run within %.0f s" % within


def check_concurrent(t, n=4):
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda _: t.request("GET", "/barrier?n=%d&key=%s" % (n, key)), range(n)))
    assert [(s, b) for s, _, b in results] == [(200, b"passed")] * n


def check_lifespan_once_before_first_request(t, requests=6):
    for _ in range(requests):
        status, headers, _ = t.request("GET", "/hello")
        assert status == 200
        assert header(headers, "X-Startups") == "1", "lifespan startups in this worker: %s" % header(
            headers, "X-Startups")
