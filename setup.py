"""Build script: the Cython speedups when they can be built, else the pure-Python package.

Environment switches (read at build time):

- ``A2WSGI_PURE=1``: build pure Python only.
- ``A2WSGI_REQUIRE_SPEEDUPS=1`` or ``CIBUILDWHEEL=1``: the compiled speedups are mandatory; any
  reason to fall back to pure fails the build instead.
"""

import glob
import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _flag(name):
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


REQUIRE = _flag("A2WSGI_REQUIRE_SPEEDUPS") or _flag("CIBUILDWHEEL")


def _say(message):
    sys.stderr.write("a2wsgi build: %s\n" % message)
    sys.stderr.flush()


def _fail(reason):
    raise SystemExit(
        "a2wsgi build: the compiled speedups are required (A2WSGI_REQUIRE_SPEEDUPS or "
        "CIBUILDWHEEL is set) but cannot be built: %s" % reason
    )


def _why_pure():
    """Return the reason to build pure Python, or None to compile."""
    if _flag("A2WSGI_PURE"):
        return "A2WSGI_PURE is set"
    impl = platform.python_implementation()
    if impl != "CPython":
        return "%s runs the pure-Python implementation" % impl
    try:
        import Cython  # noqa: F401
    except ImportError:
        return "Cython is not installed"
    return None


class OptionalBuildExt(build_ext):
    """Compile the speedups; on a compiler failure fall back to pure unless they are required."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # the distutils error classes differ between setuptools versions
            self._fallback(exc)
        else:
            if self.extensions:
                _say("compiled speedups (%s)" % ", ".join(e.name for e in self.extensions))

    def _fallback(self, exc):
        reason = "the C compiler failed (%s: %s)" % (type(exc).__name__, exc)
        if REQUIRE:
            _fail(reason)
        banner = "*" * 72
        _say("\n%s\nWARNING: pure Python, because %s.\nEverything works, only slower. "
             "Set A2WSGI_REQUIRE_SPEEDUPS=1 to make this an error.\n%s" % (banner, reason, banner))
        self.extensions = []


def _extensions():
    reason = _why_pure()
    if reason is not None:
        if REQUIRE:
            _fail(reason)
        _say("pure Python, because %s" % reason)
        return []
    sources = sorted(glob.glob(os.path.join("a2wsgi", "_speedups", "*.pyx")))
    _say("building compiled speedups from %s" % ", ".join(sources))
    return [
        Extension("a2wsgi._speedups." + os.path.splitext(os.path.basename(src))[0], [src])
        for src in sources
    ]


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
