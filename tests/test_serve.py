"""``python -m a2wsgi serve``: the demo and a user's app on the stdlib's threaded WSGI server;
Ctrl-C (SIGINT) stops it cleanly, running the app's lifespan shutdown."""

import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from servers import free_port, wait_for_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(impl):
    env = dict(os.environ)
    env.pop("A2WSGI_PURE", None)
    if not impl.compiled:
        env["A2WSGI_PURE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _start(argv, impl, cwd):
    """Start ``serve`` on a free port; another process may take the port first: then try another."""
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "a2wsgi", "serve", *argv, "--port", str(port)],
                                env=_env(impl), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, preexec_fn=_as_in_a_terminal if os.name == "posix" else None)
        try:
            wait_for_port(port, proc)
        except RuntimeError:
            out = proc.communicate(timeout=30)[0]
            if "Address already in use" in out:
                continue
            pytest.fail("serve exited early:\n" + out)
        return proc, port
    pytest.fail("no free port for serve after 3 tries")


def _as_in_a_terminal():
    """In the child: SIGINT as a shell in a terminal leaves it (its default), however the test run
    was started. A run started as a background job of a non-interactive shell ignores SIGINT, and
    an ignored signal stays ignored across exec: serve would then never see the Ctrl-C that
    ``_stop`` plays."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Popen.send_signal refuses SIGINT on Windows, and a console's Ctrl-C cannot be sent to one child:
# the tests that stop serve as a user would run on POSIX only.
_needs_sigint = pytest.mark.skipif(sys.platform == "win32",
                                   reason="Windows cannot send SIGINT (Ctrl-C) to one child process")


def _stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail("serve did not stop on SIGINT:\n" + out)
    return proc.returncode, out


@_needs_sigint
def test_serve_demo(impl, tmp_path):
    proc, port = _start(["--threads", "4"], impl, str(tmp_path))
    try:
        base = "http://127.0.0.1:%d" % port
        with httpx.stream("GET", base + "/") as response:
            assert response.status_code == 200
            pieces = [piece for piece in response.iter_raw() if piece]
        page = b"".join(pieces).decode()
        assert "a2wsgi.SPEEDUPS = %s" % impl.compiled in page
        assert ("implementation: compiled" if impl.compiled else "implementation: pure") in page
        stream = httpx.get(base + "/stream").text
        assert stream.splitlines()[-1] == "line 10 of 10"
        assert httpx.get(base + "/missing").status_code == 404
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: httpx.get(base + "/missing").status_code, range(16)))
        assert statuses == [404] * 16
    finally:
        code, out = _stop(proc)
    assert code == 0, out
    assert "Press Ctrl-C to stop" in out
    assert '"GET /stream HTTP/1.1" 200' in out  # requests are logged like a server does
    assert "lifespan startup complete" in out and "lifespan shutdown complete" in out
    assert out.rstrip().endswith("Stopped")
    assert "Traceback" not in out


@_needs_sigint
def test_serve_user_app_runs_its_lifespan_shutdown(impl, tmp_path):
    marker = tmp_path / "events.txt"
    (tmp_path / "myapp.py").write_text(textwrap.dedent("""
        MARKER = %r

        def log(line):
            with open(MARKER, "a") as f:
                f.write(line + "\\n")

        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    log(message["type"])
                    await send({"type": message["type"] + ".complete"})
                    if message["type"] == "lifespan.shutdown":
                        return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"mine " + scope["path"].encode()})
    """ % str(marker)))
    proc, port = _start(["myapp:app"], impl, str(tmp_path))
    try:
        assert httpx.get("http://127.0.0.1:%d/x" % port).text == "mine /x"
    finally:
        code, out = _stop(proc)
    assert code == 0, out
    assert marker.read_text().split() == ["lifespan.startup", "lifespan.shutdown"]


def test_serve_bad_target(impl, tmp_path):
    out = subprocess.run([sys.executable, "-m", "a2wsgi", "serve", "nosuchmodule:app", "--port",
                          str(free_port())], env=_env(impl), cwd=str(tmp_path), capture_output=True,
                         text=True, timeout=30)
    assert out.returncode != 0 and "could not import module 'nosuchmodule'" in out.stderr
