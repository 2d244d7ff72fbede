"""The test command: the suite with the compiled speedups (every behavioural test against both
implementations), then, with ``A2WSGI_PURE=1``, the tests that use the implementation the package
selected at import (``--selection-only``: the rest just ran against the pure one). Fails if the
compiled extension was not built, and if pytest collected no test (its exit code 5). Extra
arguments are passed to pytest.

With pytest-xdist installed (the test extras have it), the tests are spread over
``A2WSGI_TEST_WORKERS`` processes (default: the CPU count, at most 4; 1 runs them in this
process's pytest alone), unless the arguments choose (``-n``, ``-p no:xdist``).

Set ``A2WSGI_TEST_NO_COMPILED=1`` on an interpreter without the extension (PyPy): the build check
is skipped and one pass runs, pure only, with the implementation the interpreter picks by itself
(a second pass with ``A2WSGI_PURE=1`` would run the same tests again).
``--compiled-only`` (the per-Python wheel checks of ``.ci/run``) runs one pass against the
compiled speedups, the differential tests included; the main run covers the pure implementation.
"""

import importlib.util
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _workers(argv):
    """The ``-n`` arguments for pytest-xdist, or none."""
    if any(a.startswith(("-n", "--numprocesses", "--dist")) for a in argv):
        return []
    if "no:xdist" in argv or importlib.util.find_spec("xdist") is None:
        return []
    n = os.environ.get("A2WSGI_TEST_WORKERS", "")
    n = int(n) if n else min(os.cpu_count() or 1, 4)
    return ["-n", str(n)] if n > 1 else []


def _pytest(args, env_extra, label):
    env = dict(os.environ)
    env.pop("A2WSGI_PURE", None)
    env.update(env_extra)
    print("\n=== pytest (%s) %s" % (label, " ".join(args)), flush=True)
    started = time.monotonic()
    code = subprocess.call([sys.executable, "-m", "pytest", *args], env=env, cwd=os.path.dirname(HERE))
    print("=== %s finished in %.0f s with exit code %d" % (label, time.monotonic() - started, code),
          flush=True)
    if code == 5:
        print("error: pytest collected no test", file=sys.stderr)
        return 1
    return code


def main(argv):
    argv = list(argv) + _workers(argv)
    no_compiled = os.environ.get("A2WSGI_TEST_NO_COMPILED", "") not in ("", "0")
    if not no_compiled:
        probe = subprocess.run(
            [sys.executable, "-c", "import a2wsgi, a2wsgi._speedups._wsgi_hot, a2wsgi._speedups._asgi_hot;"
             "assert a2wsgi.SPEEDUPS, 'a2wsgi.SPEEDUPS is False'"],
            env={k: v for k, v in os.environ.items() if k != "A2WSGI_PURE"},
            capture_output=True, text=True,
        )
        if probe.returncode != 0:
            print("error: the compiled speedups are not built or not selected:\n" + probe.stderr,
                  file=sys.stderr)
            return 1
    if no_compiled:
        return _pytest(argv + ["--no-c-extensions"], {}, "pure, as this interpreter selects")
    if "--compiled-only" in argv:
        return _pytest(argv, {}, "compiled")
    code = _pytest(argv, {}, "compiled + pure")
    code2 = _pytest(argv + ["--no-c-extensions", "--selection-only"], {"A2WSGI_PURE": "1"},
                    "A2WSGI_PURE=1, the selected implementation")
    return code or code2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
