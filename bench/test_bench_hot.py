"""Hot paths with 20 request headers: compiled vs pure vs upstream a2wsgi 1.10.10, in one process.

Run with ``pytest bench/ --benchmark-only`` (add ``--benchmark-group-by=func`` to compare per
function). A function that an implementation does not have is skipped for it.
"""

import importlib
import io

import pytest

import apps
from conftest import _ours


def _function(impl, upstream, direction, name):
    if impl == "upstream":
        module = importlib.import_module("a2wsgi_upstream." + ("wsgi" if direction == "wsgi" else "asgi"))
    else:
        try:
            module = _ours(impl, "_%s_hot" % direction)
        except ImportError as exc:
            if impl == "compiled":
                raise
            pytest.skip(str(exc))
    func = getattr(module, name, None)
    if func is None:
        pytest.skip("%s has no %s" % (module.__name__, name))
    return func


def test_build_environ(benchmark, impl, upstream):
    func = _function(impl, upstream, "wsgi", "build_environ")
    scope = apps.http_scope()
    body = io.BytesIO(b"")
    environ = benchmark(func, scope, body)
    assert environ["REQUEST_METHOD"] == "POST" and environ["HTTP_HOST"] == "example.com:8000"


def test_build_scope(benchmark, impl, upstream):
    func = _function(impl, upstream, "asgi", "build_scope")
    environ = apps.wsgi_environ(content_length=len(apps.ECHO_BODY))
    scope = benchmark(func, environ)
    assert scope["method"] == "POST" and len(scope["headers"]) >= 19


def test_translate_request_headers(benchmark, impl, upstream):
    if impl == "upstream":
        pytest.skip("upstream has no separate header translation")
    func = _function(impl, upstream, "wsgi", "translate_request_headers")
    environ = benchmark(func, apps.HEADERS_20)
    assert environ["HTTP_COOKIE"].endswith("; csrftoken=fedcba9876543210")


def test_encode_response_headers(benchmark, impl, upstream):
    if impl == "upstream":
        pytest.skip("upstream has no separate response header encoding")
    func = _function(impl, upstream, "wsgi", "encode_response_headers")
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "1234"),
               ("Cache-Control", "no-cache"), ("Set-Cookie", "a=b; Path=/; HttpOnly"),
               ("X-Frame-Options", "DENY"), ("Vary", "Accept-Encoding")]
    benchmark(func, headers)


def test_parse_status(benchmark, impl, upstream):
    if impl == "upstream":
        pytest.skip("upstream has no separate status parsing")
    func = _function(impl, upstream, "wsgi", "parse_status")
    benchmark(func, "200 OK")


def test_build_headers(benchmark, impl, upstream):
    if impl == "upstream":
        pytest.skip("upstream builds headers inside build_scope only")
    func = _function(impl, upstream, "asgi", "build_headers")
    environ = apps.wsgi_environ(content_length=len(apps.ECHO_BODY))
    headers = benchmark(func, environ)
    assert (b"host", b"example.com:8000") in list(headers)


def test_decode_response_headers(benchmark, impl, upstream):
    if impl == "upstream":
        pytest.skip("upstream decodes response headers inline")
    func = _function(impl, upstream, "asgi", "decode_response_headers")
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", b"1234"),
               (b"cache-control", b"no-cache"), (b"set-cookie", b"a=b; Path=/; HttpOnly"),
               (b"x-frame-options", b"DENY"), (b"vary", b"Accept-Encoding")]
    benchmark(func, headers)


def test_status_line(benchmark, impl, upstream):
    if impl == "upstream":
        pytest.skip("upstream maps status codes through a dict")
    func = _function(impl, upstream, "asgi", "status_line")
    assert benchmark(func, 404).startswith("404 ")
