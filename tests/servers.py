"""Start real servers as subprocesses on 127.0.0.1 for integration tests, and stop them by pid."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited early with code %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("server did not listen on 127.0.0.1:%d within %.0f s" % (port, timeout))


@contextlib.contextmanager
def running(argv, port, env=None, cwd=None, timeout=30.0):
    """Run ``argv`` (a server listening on ``port``), yield the Popen, then stop it by pid.

    ``tests/`` is put on PYTHONPATH so that app modules next to the tests import by name.
    The server's output goes to a log file whose tail is shown if it fails to start.
    """
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [HERE, os.path.join(HERE, "integration")] + ([full_env["PYTHONPATH"]] if full_env.get("PYTHONPATH") else [])
    )
    if env:
        full_env.update(env)
    log = open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "a2wsgi-server-%d.log" % port), "w+b")
    proc = subprocess.Popen(argv, env=full_env, cwd=cwd or HERE, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        try:
            wait_for_port(port, proc, timeout)
        except Exception:
            log.flush()
            log.seek(0)
            raise RuntimeError("could not start %r:\n%s" % (argv, log.read()[-4000:].decode("utf-8", "replace")))
        yield proc
    finally:
        stop(proc)
        log.close()


def stop(proc, timeout=10.0):
    """SIGTERM the server's process group (it was started in its own session), then SIGKILL."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)


PYTHON = sys.executable
