"""pytest-benchmark suite of the hot paths: ``pytest bench/ --benchmark-only``.

The implementations sit side by side in one process: the compiled twins and the pure-Python
reference imported directly (as the tests do), and upstream a2wsgi 1.10.10 imported under the name
``a2wsgi_upstream`` from ``bench/.peers/upstream`` (installed there on first use).
"""

import importlib
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import peers  # noqa: E402


def _ours(kind, name):
    module = "a2wsgi._speedups." + name if kind == "compiled" else "a2wsgi." + name
    return importlib.import_module(module)


@pytest.fixture(scope="session")
def upstream():
    peers.ensure_peers(sys.executable)
    return peers.load_upstream()


@pytest.fixture(scope="session", params=["compiled", "pure", "upstream"])
def impl(request):
    return request.param
