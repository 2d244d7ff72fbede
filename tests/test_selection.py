"""The selector picks the compiled twins on CPython unless A2WSGI_PURE is set, and both twins
expose the same names."""

import os
import subprocess
import sys

import pytest

import a2wsgi
from a2wsgi import _hot

CPYTHON = sys.implementation.name == "cpython"
PURE_ENV = os.environ.get("A2WSGI_PURE", "").strip().lower() not in ("", "0", "false", "no")


def _speedups_in_child(**env_changes):
    env = dict(os.environ)
    env.pop("A2WSGI_PURE", None)
    env.update(env_changes)
    out = subprocess.run(
        [sys.executable, "-c", "import a2wsgi, a2wsgi._hot as h; print(a2wsgi.SPEEDUPS, h.REASON)"],
        env=env, capture_output=True, text=True, check=True,
    )
    return out.stdout.strip()


@pytest.mark.c_extension
@pytest.mark.skipif(not CPYTHON, reason="only CPython has the compiled speedups")
def test_compiled_selected_when_not_forced_pure():
    assert _speedups_in_child() == "True compiled"


def test_a2wsgi_pure_forces_pure():
    assert _speedups_in_child(A2WSGI_PURE="1") == "False pure, because A2WSGI_PURE is set"


@pytest.mark.c_extension
def test_this_process_selected_as_its_environment_asks():
    if PURE_ENV or not CPYTHON:
        assert a2wsgi.SPEEDUPS is False
        assert _hot.wsgi_hot.__name__ == "a2wsgi._wsgi_hot"
    else:
        assert a2wsgi.SPEEDUPS is True
        assert _hot.wsgi_hot.__name__ == "a2wsgi._speedups._wsgi_hot"
        assert _hot.asgi_hot.__name__ == "a2wsgi._speedups._asgi_hot"


def test_pure_process_is_pure_here():
    if PURE_ENV or not CPYTHON:
        assert a2wsgi.SPEEDUPS is False
        assert "pure" in _hot.REASON


@pytest.mark.c_extension
def test_twins_expose_the_same_names(pure, compiled):
    for name in ("wsgi_hot", "asgi_hot"):
        p, c = getattr(pure, name), getattr(compiled, name)
        assert tuple(p.__all__) == tuple(c.__all__)
        for attr in p.__all__:
            assert hasattr(c, attr), attr


def test_impl_fixture_rebinds_orchestration(impl):
    import a2wsgi.wsgi

    assert a2wsgi.wsgi.translate_request_headers is impl.wsgi_hot.translate_request_headers


def test_info_command_names_the_implementation():
    out = subprocess.run([sys.executable, "-m", "a2wsgi", "info"], capture_output=True, text=True,
                         check=True).stdout
    assert "a2wsgi %s" % a2wsgi.__version__ in out
    assert "implementation: %s" % _hot.REASON in out


def test_public_names():
    assert isinstance(a2wsgi.SPEEDUPS, bool)
    assert a2wsgi.VERSION == tuple(int(p) for p in a2wsgi.__version__.split("."))
    from a2wsgi import asgi_typing, wsgi_typing

    for mod in (asgi_typing, wsgi_typing):
        for name in mod.__all__:
            assert getattr(mod, name) is not None
