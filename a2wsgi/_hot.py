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
        return (_wsgi_hot_py, _asgi_hot_py, False,
                "pure, because the compiled extension failed to import: %s" % exc)
    return _wsgi_hot_c, _asgi_hot_c, True, "compiled"


if TYPE_CHECKING:
    wsgi_hot = _wsgi_hot_py
    asgi_hot = _asgi_hot_py
    SPEEDUPS = False
    REASON = "pure"
else:
    wsgi_hot, asgi_hot, SPEEDUPS, REASON = _select()
