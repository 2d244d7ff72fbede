"""a2wsgi: run WSGI apps on ASGI servers (``WSGIMiddleware``) and ASGI apps on WSGI servers
(``ASGIMiddleware``), with one thread hop per request and compiled hot paths."""

from ._hot import SPEEDUPS
from .asgi import ASGIMiddleware
from .wsgi import WSGIMiddleware

__version__ = "2.0.0"
VERSION = (2, 0, 0)

__all__ = ("WSGIMiddleware", "ASGIMiddleware", "SPEEDUPS", "VERSION", "__version__")
