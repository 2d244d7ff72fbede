"""Hello-world apps for the real-server workload, chosen by ``A2WSGI_BENCH_APP``.

``wa:IMPL`` is an ASGI app for uvicorn: the WSGI hello world through a W->A bridge (``ours``,
``upstream``, ``uvicorn``, ``asgiref``) or the ASGI hello world itself (``native``).
``aw:IMPL`` is a WSGI app for gunicorn: the ASGI hello world through an A->W bridge (``ours``,
``upstream``) or the WSGI hello world itself (``native``). Which a2wsgi is imported is decided by
``sys.path``: run.py puts upstream's target directory first for ``upstream``.
"""

import os

import apps
import workloads

_direction, _, _impl = os.environ["A2WSGI_BENCH_APP"].partition(":")
if _direction == "wa":
    app = workloads.wrap_wsgi_app(_impl, apps.wsgi_hello, apps.asgi_hello)
elif _direction == "aw":
    app = workloads.wrap_asgi_app(_impl, apps.asgi_hello, apps.wsgi_hello)
else:
    raise RuntimeError("A2WSGI_BENCH_APP must be wa:IMPL or aw:IMPL, not %r" % os.environ["A2WSGI_BENCH_APP"])
