"""Test harness: every behavioural test runs against both the pure and the compiled hot paths.

The ``hot`` fixture is parametrised over the two implementations. The compiled parameter is
marked ``c_extension`` and imports ``a2wsgi._speedups.*`` directly, so a missing build is an
error, never a skip. ``--no-c-extensions`` deselects it (PyPy, or a pure-only check);
``--compiled-only`` deselects the pure parameter instead (the per-Python wheel checks of
``.ci/run``; the differential tests, which compare the two directly, still run).
``--selection-only`` keeps only the tests that are not parametrised over the implementation:
they run against the one the package selected at import (the ``A2WSGI_PURE=1`` pass of
``tests/run.py``; the parametrised tests already ran against both).
The ``impl`` fixture also rebinds the orchestration modules (``a2wsgi.wsgi``, ``a2wsgi.asgi``)
to the chosen implementation for the duration of one test.
"""

import importlib
import sys
import types

import pytest

HOT_MODULES = ("_wsgi_hot", "_asgi_hot")
ORCHESTRATION = ("a2wsgi.wsgi", "a2wsgi.asgi")


def pytest_addoption(parser):
    parser.addoption(
        "--no-c-extensions",
        action="store_true",
        default=False,
        help="do not run the tests against the compiled speedups",
    )
    parser.addoption(
        "--compiled-only",
        action="store_true",
        default=False,
        help="run the behavioural tests against the compiled speedups only (the differential "
             "tests still compare both): the per-Python wheel checks, where the pure pass of the "
             "main run already covers the pure implementation",
    )

    parser.addoption(
        "--selection-only",
        action="store_true",
        default=False,
        help="run only the tests not parametrised over the implementation (they use the one "
             "the package selected at import, e.g. with A2WSGI_PURE=1)",
    )


def _impl_param(item):
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("hot") if callspec is not None else None


def pytest_collection_modifyitems(config, items):
    no_compiled = config.getoption("--no-c-extensions")
    compiled_only = config.getoption("--compiled-only")
    selection_only = config.getoption("--selection-only")
    if no_compiled and compiled_only:
        raise pytest.UsageError("--no-c-extensions and --compiled-only exclude each other")
    if not (no_compiled or compiled_only or selection_only):
        return
    kept, dropped = [], []
    for item in items:
        if selection_only and _impl_param(item) is not None:
            drop = True
        elif no_compiled:
            drop = item.get_closest_marker("c_extension")
        else:
            drop = compiled_only and _impl_param(item) == "pure"
        (dropped if drop else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_runtest_setup(item):
    if sys.implementation.name == "cpython":
        return
    if item.get_closest_marker("refcounting"):
        pytest.skip("%s frees objects only when its garbage collector runs, so there is no "
                    "reference count to check" % sys.implementation.name)
    if item.get_closest_marker("cpython_only"):
        pytest.skip("%s always runs the pure implementation" % sys.implementation.name)


def _load(kind):
    if kind == "pure":
        mods = {name: importlib.import_module("a2wsgi." + name) for name in HOT_MODULES}
    else:
        mods = {name: importlib.import_module("a2wsgi._speedups." + name) for name in HOT_MODULES}
    return types.SimpleNamespace(name=kind, compiled=kind == "compiled",
                                 wsgi_hot=mods["_wsgi_hot"], asgi_hot=mods["_asgi_hot"])


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("pure", id="pure"),
        pytest.param("compiled", id="compiled", marks=pytest.mark.c_extension),
    ],
)
def hot(request):
    """The hot-path modules of one implementation: ``hot.wsgi_hot`` and ``hot.asgi_hot``."""
    return _load(request.param)


@pytest.fixture
def impl(hot, monkeypatch):
    """``hot``, with the orchestration modules rebound to it for this test."""
    for orch_name in ORCHESTRATION:
        orch = importlib.import_module(orch_name)
        for mod in (hot.wsgi_hot, hot.asgi_hot):
            for name in mod.__all__:
                if name in vars(orch):
                    monkeypatch.setattr(orch, name, getattr(mod, name))
    return hot


@pytest.fixture(params=["thread", "inline"])
def asgi_mode(request):
    """The two ways ASGIMiddleware runs the app: on its loop thread (the default) or on the
    serving thread (``inline=True``). Every A->W behaviour test made through the ``middlewares``
    fixture (tests/test_asgi_support.py) runs in both."""
    return request.param


@pytest.fixture(scope="session")
def pure():
    return _load("pure")


@pytest.fixture(scope="session")
def compiled():
    """The compiled twins, imported directly: an ImportError here means the build is missing."""
    return _load("compiled")
