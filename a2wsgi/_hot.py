"""The one place that chooses between the compiled and the pure-Python hot paths.

Decided once, at import: ``A2WSGI_PURE`` set to a true value, a non-CPython interpreter, or a
compiled module that fails to import gives the pure-Python reference; otherwise the Cython twins in
``a2wsgi/_speedups/`` are used. Type checkers always see the pure modules.
"""

import os
import sys
from typing import TYPE_CHECKING

from . import _asgi_hot as _asgi_hot_py
from . import _wsgi_hot as _wsgi_hot_py

__all__ = ("SPEEDUPS", "REASON", "wsgi_hot", "asgi_hot")


def _pure_requested():
    return os.environ.get("A2WSGI_PURE", "").strip().lower() not in ("", "0", "false", "no")


def _select():
    if _pure_requested():
        return _wsgi_hot_py, _asgi_hot_py, False, "pure, because A2WSGI_PURE is set"
    if sys.implementation.name != "cpython":
        return (_wsgi_hot_py, _asgi_hot_py, False,
                "pure, because %s runs the pure-Python implementation" % sys.implementation.name)
    try:
        from ._speedups import _asgi_hot as _asgi_hot_c
        from ._speedups import _wsgi_hot as _wsgi_hot_c
    except ImportError as exc:
        return _wsgi_hot_py, _asgi_hot_py, False, _fallback_reason(exc)
    return _wsgi_hot_c, _asgi_hot_c, True, "compiled"


def _fallback_reason(exc):
    """One line for a first-time user: why the compiled build is not in use and how to get it.
    No traceback and no file path (the error's text can hold one): its type and module name only."""
    package_dir = os.path.dirname(os.path.abspath(__file__))
    if os.path.exists(os.path.join(os.path.dirname(package_dir), "setup.py")):
        return ("pure, because a2wsgi was imported from its source checkout, where the compiled "
                "extension is not built (%s); run from another directory to use the installed "
                "build, or build it here with `python setup.py build_ext --inplace`"
                % type(exc).__name__)
    missing = getattr(exc, "name", None) or "a2wsgi._speedups"
    return ("pure, because the compiled extension did not load (%s for %s); install a binary "
            "wheel, or `pip install a2wsgi` where a C compiler is available"
            % (type(exc).__name__, missing))


if TYPE_CHECKING:
    wsgi_hot = _wsgi_hot_py
    asgi_hot = _asgi_hot_py
    SPEEDUPS = False
    REASON = "pure"
else:
    wsgi_hot, asgi_hot, SPEEDUPS, REASON = _select()
