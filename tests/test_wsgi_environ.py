"""The WSGI environ built from an ASGI HTTP scope (PEP 3333, "environ Variables")."""

import sys

import pytest

from test_wsgi_support import call, http_scope, mw, run  # noqa: F401


def environ_for(impl, script_name=None, **scope_args):
    return impl.wsgi_hot.build_environ(http_scope(**scope_args), "BODY", script_name)


@pytest.mark.parametrize(
    "root_path, path, script_name, path_info",
    [
        ("", "/", "", "/"),
        ("", "/a/b", "", "/a/b"),
        ("/app", "/app/x", "/app", "/x"),
        ("/app", "/app", "/app", ""),
        ("/app", "/app/", "/app", "/"),
        ("/app", "/application", "/app", "/application"),
        ("/app", "/appx/y", "/app", "/appx/y"),
        ("/app/", "/app/x", "/app", "/x"),
        ("/", "/x", "", "/x"),
        ("/a/b", "/a/b/c", "/a/b", "/c"),
        ("/app", "/other", "/app", "/other"),
    ],
)
def test_script_name_stripped_only_at_a_segment_boundary(impl, root_path, path, script_name, path_info):
    environ = environ_for(impl, root_path=root_path, path=path)
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_paths_are_utf8_bytes_read_as_latin1(impl):
    environ = environ_for(impl, root_path="/caf\xe9", path="/caf\xe9/\u20ac x")
    assert environ["SCRIPT_NAME"] == "/caf\xc3\xa9"
    assert environ["PATH_INFO"] == "/\xe2\x82\xac x"
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/\u20ac x"


def test_paths_not_derived_from_raw_path(impl):
    """A router (Starlette's Mount) rewrites root_path and leaves raw_path alone."""
    environ = environ_for(impl, root_path="/mount", path="/mount/in%2Fside",
                          raw_path=b"/something/else")
    assert environ["SCRIPT_NAME"] == "/mount"
    assert environ["PATH_INFO"] == "/in%2Fside"


def test_query_string_latin1(impl):
    environ = environ_for(impl, query_string=b"a=1&b=\xe9\xff")
    assert environ["QUERY_STRING"] == "a=1&b=\xe9\xff"


def test_cgi_and_wsgi_keys(impl):
    scope = http_scope(method="PUT", headers=[(b"host", b"h"), (b"content-length", b"3")],
                       scheme="https", http_version="2", server=("example.org", 8443),
                       client=("10.0.0.1", 1234))
    environ = impl.wsgi_hot.build_environ(scope, "BODY")
    assert environ["REQUEST_METHOD"] == "PUT"
    assert environ["SERVER_NAME"] == "example.org"
    assert environ["SERVER_PORT"] == "8443"
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["REMOTE_ADDR"] == "10.0.0.1"
    assert environ["REMOTE_PORT"] == "1234"
    assert environ["HTTP_HOST"] == "h"
    assert environ["CONTENT_LENGTH"] == "3"
    assert environ["wsgi.version"] == (1, 0)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["wsgi.input"] == "BODY"
    assert environ["wsgi.input_terminated"] is True
    assert environ["wsgi.errors"] is sys.stderr
    assert environ["wsgi.multithread"] is True
    assert environ["wsgi.multiprocess"] is True
    assert environ["wsgi.run_once"] is False
    assert environ["asgi.scope"] is scope
    for key, value in environ.items():
        assert type(key) is str
        if key.isupper():
            assert type(value) is str, key


def test_defaults_for_missing_optional_keys(impl):
    scope = {"type": "http", "method": "GET", "path": "/"}
    environ = impl.wsgi_hot.build_environ(scope, None)
    assert environ["SCRIPT_NAME"] == "" and environ["PATH_INFO"] == "/"
    assert environ["QUERY_STRING"] == ""
    assert environ["SERVER_NAME"] == "localhost" and environ["SERVER_PORT"] == "80"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["wsgi.url_scheme"] == "http"
    assert "REMOTE_ADDR" not in environ and "REMOTE_PORT" not in environ
    https = impl.wsgi_hot.build_environ(dict(scope, scheme="https", server=("/tmp/sock", None)), None)
    assert https["SERVER_NAME"] == "/tmp/sock" and https["SERVER_PORT"] == "443"


def test_script_name_override(impl):
    environ = environ_for(impl, script_name="/prefix", root_path="/ignored", path="/prefix/x")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/prefix", "/x")
    environ = environ_for(impl, script_name="", root_path="/r", path="/r/x")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/r", "/x")


@pytest.mark.parametrize(
    "changes, exc",
    [
        ({"method": None}, TypeError),
        ({"path": b"/"}, TypeError),
        ({"root_path": None}, TypeError),
        ({"query_string": "a=1"}, TypeError),
        ({"scheme": b"http"}, TypeError),
        ({"http_version": 1.1}, TypeError),
        ({"headers": [("host", "x")]}, TypeError),
        ({"path": "/\ud800"}, ValueError),
    ],
)
def test_bad_scope_values(impl, changes, exc):
    with pytest.raises(exc):
        impl.wsgi_hot.build_environ(dict(http_scope(), **changes), None)


def test_missing_method_or_path(impl):
    for key in ("method", "path"):
        scope = http_scope()
        del scope[key]
        with pytest.raises(KeyError):
            impl.wsgi_hot.build_environ(scope, None)


# ---- through the middleware ----------------------------------------------------------------


def capture(store):
    def app(environ, start_response):
        store.update(environ)
        start_response("200 OK", [])
        return [b"ok"]

    return app


def test_environ_through_middleware(mw, impl):
    from a2wsgi.wsgi import FileWrapper

    seen = {}
    scope = http_scope(root_path="/m", path="/m/p", query_string=b"q=1",
                       headers=[(b"x-a", b"1"), (b"x-a", b"2")])
    run(call(mw(capture(seen)), scope))
    assert seen["SCRIPT_NAME"] == "/m" and seen["PATH_INFO"] == "/p"
    assert seen["QUERY_STRING"] == "q=1"
    assert seen["HTTP_X_A"] == "1,2"
    assert seen["wsgi.file_wrapper"] is FileWrapper
    assert seen["asgi.scope"] is scope
    assert seen["wsgi.input"].read() == b""


def test_script_name_from_os_environ_read_once(mw, impl, monkeypatch):
    monkeypatch.setenv("SCRIPT_NAME", "/from-env")
    app_seen = {}
    middleware = mw(capture(app_seen))
    monkeypatch.setenv("SCRIPT_NAME", "/changed-later")
    run(call(middleware, http_scope(path="/from-env/x")))
    assert app_seen["SCRIPT_NAME"] == "/from-env"
    assert app_seen["PATH_INFO"] == "/x"
    monkeypatch.delenv("SCRIPT_NAME")
    plain = {}
    run(call(mw(capture(plain)), http_scope(root_path="/r", path="/r/x")))
    assert plain["SCRIPT_NAME"] == "/r" and plain["PATH_INFO"] == "/x"


def test_too_many_request_headers_431(mw, impl):
    calls = []

    def app(environ, start_response):
        calls.append(1)
        start_response("200 OK", [])
        return []

    middleware = mw(app)
    script = run(call(middleware, http_scope(headers=[(b"x-h", b"v")] * 1001)))
    assert script.status == 431 and script.complete and calls == []
    script = run(call(middleware, http_scope(headers=[(b"x-h", b"v")] * 1000)))
    assert script.status == 200 and calls == [1]


def test_bad_scope_sends_nothing_and_raises(mw, impl):
    def app(environ, start_response):
        raise AssertionError("not reached")

    script_holder = {}

    async def go():
        from test_wsgi_support import Script

        script = script_holder["s"] = Script()
        scope = http_scope(query_string="not-bytes")
        await mw(app)(scope, script.receive, script.send)

    with pytest.raises(TypeError, match="query_string"):
        run(go())
    assert script_holder["s"].sent == []
