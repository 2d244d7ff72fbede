"""ASGI scope built from the WSGI environ (ASGI HTTP spec 2.5 "Connection Scope", PEP 3333)."""

import pytest

from test_asgi_support import call, make_environ, middlewares, respond  # noqa: F401


def scope_of(make, environ):
    seen = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            seen.append(scope)
            await respond(send, b"ok")

    response = call(make(app), environ)
    assert response.status == "200 OK", response.calls
    return seen[0]


def test_scope_keys(middlewares):
    environ = make_environ("/items/1", method="POST", body=b"abc", query="a=1&b=%20",
                           SCRIPT_NAME="/api", HTTP_X_TOKEN="t", CONTENT_TYPE="text/plain",
                           REMOTE_ADDR="10.0.0.7", REMOTE_PORT="5555", SERVER_PROTOCOL="HTTP/1.1")
    scope = scope_of(middlewares, environ)
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "POST"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/api/items/1"
    assert scope["raw_path"] == b"/api/items/1"
    assert scope["root_path"] == "/api"
    assert scope["query_string"] == b"a=1&b=%20"
    headers = scope["headers"]
    assert (b"x-token", b"t") in headers
    assert headers.count((b"content-type", b"text/plain")) == 1
    assert headers.count((b"content-length", b"3")) == 1
    assert all(name == name.lower() and isinstance(name, bytes) for name, _ in headers)
    assert scope["server"] == ("127.0.0.1", 80)
    assert scope["client"] == ("10.0.0.7", 5555)
    assert scope["extensions"] == {"http.response.pathsend": {}}
    assert scope["state"] == {}
    assert scope["wsgi_environ"] is environ


def test_content_type_and_length_once_each(middlewares):
    environ = make_environ("/", method="POST", body=b"xy", CONTENT_TYPE="a/b",
                           HTTP_CONTENT_TYPE="c/d", HTTP_CONTENT_LENGTH="99")
    headers = scope_of(middlewares, environ)["headers"]
    names = [name for name, _ in headers]
    assert names.count(b"content-type") == 1 and names.count(b"content-length") == 1
    assert (b"content-type", b"a/b") in headers and (b"content-length", b"2") in headers


def test_empty_content_type_and_length_left_out(middlewares):
    environ = make_environ("/", CONTENT_TYPE="", CONTENT_LENGTH="")
    names = [name for name, _ in scope_of(middlewares, environ)["headers"]]
    assert b"content-type" not in names and b"content-length" not in names


def test_path_latin1_to_utf8_and_surrogateescape(middlewares):
    # PEP 3333: PATH_INFO carries the raw bytes as latin-1 code points
    path_info = "/caf\u00c3\u00a9/\u00ff"  # b"/caf\xc3\xa9/\xff"
    scope = scope_of(middlewares, make_environ(path_info))
    assert scope["path"] == "/caf\u00e9/\udcff"
    assert scope["path"].encode("utf-8", "surrogateescape") == b"/caf\xc3\xa9/\xff"
    assert scope["raw_path"] == b"/caf%C3%A9/%FF"


def test_raw_path_from_request_uri(middlewares):
    scope = scope_of(middlewares, make_environ("/a b", REQUEST_URI="/a%20b?x=1"))
    assert scope["raw_path"] == b"/a%20b"
    scope = scope_of(middlewares, make_environ("/a/b", RAW_URI="/a%2Fb"))
    assert scope["raw_path"] == b"/a%2Fb"
    scope = scope_of(middlewares, make_environ("/p", REQUEST_URI="http://example.com/p?q"))
    assert scope["raw_path"] == b"/p"


def test_raw_path_built_from_path_escapes_percent(middlewares):
    scope = scope_of(middlewares, make_environ("/100%/x y", SCRIPT_NAME="/m"))
    assert scope["raw_path"] == b"/m/100%25/x%20y"


def test_client_without_remote_port(middlewares):
    environ = make_environ("/", REMOTE_ADDR="192.0.2.1")
    environ.pop("REMOTE_PORT", None)
    assert scope_of(middlewares, environ)["client"] == ("192.0.2.1", 0)


def test_no_client_without_remote_addr(middlewares):
    environ = make_environ("/")
    environ.pop("REMOTE_ADDR", None)
    assert "client" not in scope_of(middlewares, environ)


@pytest.mark.parametrize("protocol, version", [("HTTP/1.0", "1.0"), ("HTTP/1.1", "1.1"),
                                                ("HTTP/2.0", "2"), ("HTTP/2", "2"), ("junk", "1.0")])
def test_http_version(middlewares, protocol, version):
    assert scope_of(middlewares, make_environ("/", SERVER_PROTOCOL=protocol))["http_version"] == version


def test_https_scheme_and_odd_server_port(middlewares):
    scope = scope_of(middlewares, make_environ("/", **{"wsgi.url_scheme": "https", "SERVER_PORT": "x"}))
    assert scope["scheme"] == "https"
    assert scope["server"] == ("127.0.0.1", None)


def test_build_scope_is_exported(impl):
    import a2wsgi.asgi

    scope = a2wsgi.asgi.build_scope(make_environ("/x", HTTP_HOST="h"))
    assert scope["path"] == "/x" and (b"host", b"h") in scope["headers"]
    assert a2wsgi.asgi.build_scope is impl.asgi_hot.build_scope


def test_build_scope_refuses_missing_method(impl):
    environ = make_environ("/")
    del environ["REQUEST_METHOD"]
    with pytest.raises(ValueError, match="REQUEST_METHOD"):
        impl.asgi_hot.build_scope(environ)


def test_build_headers_non_str_value_names_the_key(impl):
    with pytest.raises(TypeError, match="HTTP_X_A"):
        impl.asgi_hot.build_headers({"HTTP_X_A": b"bytes"})


def test_build_headers_beyond_latin1_falls_back_to_utf8(impl):
    assert impl.asgi_hot.build_headers({"HTTP_X_\u0101": "\u20ac"}) == [
        ("x-\u0101".encode("utf-8"), "\u20ac".encode("utf-8"))]


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), ("0", 0), ("17", 17),
                                             (" 5 ", 5)])
def test_request_body_length(impl, value, expected):
    environ = {} if value is None else {"CONTENT_LENGTH": value}
    assert impl.asgi_hot.request_body_length(environ) == expected


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "\u00b2", "0x10", 5])
def test_request_body_length_refuses(impl, value):
    with pytest.raises(ValueError, match="CONTENT_LENGTH"):
        impl.asgi_hot.request_body_length({"CONTENT_LENGTH": value})


def test_invalid_content_length_is_400_without_calling_the_app(middlewares):
    called = []

    async def app(scope, receive, send):
        if scope["type"] == "http":
            called.append(scope)
            await respond(send)

    response = call(middlewares(app), make_environ("/", CONTENT_LENGTH="nope"))
    assert response.status.startswith("400 ")
    assert called == []
