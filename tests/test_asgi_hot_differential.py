"""Pure and compiled hot paths of the ASGI-app side agree exactly, exceptions included
(Hypothesis-generated environs and response headers)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.c_extension

_latin1_text = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=12)
_any_text = st.text(max_size=8)
_crlf_text = st.text(alphabet=st.sampled_from("a/%?\r\n\x00 \xe9\xff\u0101"), max_size=8)
_header_keys = st.one_of(
    st.sampled_from(["HTTP_HOST", "HTTP_COOKIE", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH",
                     "HTTP_X_A", "HTTP_", "HTTP_x_lower", "HTTP_X_CAF\xc9", "HTTP_X_\u0101",
                     "CONTENT_TYPE", "CONTENT_LENGTH", "REMOTE_ADDR",
                     # common keys (the twins' ready-made names) and near misses of them
                     "HTTP_USER_AGENT", "HTTP_SEC_FETCH_MODE", "HTTP_SEC_FETCH_MODF", "HTTP_SEC_FETCH_mode",
                     "HTTP_VIA", "HTTP_VIa", "HTTP_TE", "HTTP_T", "CONTENT_TYPF", "HTTP_X_REQUEST_ID",
                     "HTTP_X_REQUEST_IDS", "HTTP_ACCEPT", "HTTP_ACCEPT_"]),
    st.text(alphabet=st.sampled_from("ABZaz_-\xe9\u0101"), max_size=6).map(lambda s: "HTTP_" + s),
)
_values = st.one_of(_latin1_text, _any_text, _crlf_text, st.just(""), st.binary(max_size=3),
                    st.integers(), st.none())
_lengths = st.one_of(st.none(), st.just(""), st.integers(-5, 10**12).map(str),
                     st.sampled_from(["1.5", " 7 ", "\u00b2", "0x1", "abc", "\t3", "+4", "٣"]),
                     st.integers())
_paths = st.one_of(_latin1_text, _any_text, st.sampled_from(["/", "/a b", "/%41", "/\xc3\xa9", "/\xff",
                                                             "/caf\u00e9", ""]))
_uris = st.one_of(st.none(), st.just(""), _latin1_text,
                  st.sampled_from(["/x?y", "http://h/p?q", "http://h", "*", "//a", "https://h:1/a%20b"]))


@st.composite
def environs(draw):
    environ = {
        "REQUEST_METHOD": draw(st.one_of(st.sampled_from(["GET", "POST", "get"]), _any_text, st.none())),
        "SCRIPT_NAME": draw(_paths),
        "PATH_INFO": draw(_paths),
        "QUERY_STRING": draw(st.one_of(_latin1_text, _any_text)),
        "SERVER_NAME": draw(st.one_of(st.just("localhost"), _any_text, st.none())),
        "SERVER_PORT": draw(st.one_of(st.just("80"), _any_text, st.integers(), st.none())),
        "SERVER_PROTOCOL": draw(st.one_of(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/3.0",
                                                           "HTTP/", "x"]), _any_text, st.none())),
        "wsgi.url_scheme": draw(st.one_of(st.sampled_from(["http", "https"]), _any_text, st.none())),
    }
    for key in ("SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "wsgi.url_scheme", "REQUEST_METHOD"):
        if environ[key] is None:
            del environ[key]
    for key in ("REMOTE_ADDR", "REMOTE_PORT", "REQUEST_URI", "RAW_URI"):
        if draw(st.booleans()):
            environ[key] = draw(_uris if key.endswith("URI") else st.one_of(_any_text, st.just("1234")))
    length = draw(_lengths)
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    for key, value in draw(st.lists(st.tuples(_header_keys, _values), max_size=8)):
        environ[key] = value
    return environ


def outcome(func, *args):
    try:
        return ("ok", func(*args))
    except Exception as exc:
        return ("error", type(exc), str(exc))


def comparable(result):
    if result[0] == "ok" and isinstance(result[1], dict):
        scope = dict(result[1])
        scope.pop("wsgi_environ", None)
        return ("ok", scope)
    return result


@settings(max_examples=400, deadline=None)
@given(environs())
def test_build_scope_agrees(pure, compiled, environ):
    expected = comparable(outcome(pure.asgi_hot.build_scope, environ))
    assert comparable(outcome(compiled.asgi_hot.build_scope, environ)) == expected


@settings(max_examples=400, deadline=None)
@given(environs())
def test_build_headers_and_body_length_agree(pure, compiled, environ):
    assert outcome(compiled.asgi_hot.build_headers, environ) == outcome(pure.asgi_hot.build_headers, environ)
    assert outcome(compiled.asgi_hot.request_body_length, environ) == outcome(
        pure.asgi_hot.request_body_length, environ)


_hbytes = st.one_of(st.binary(max_size=10), st.sampled_from([b"connection", b"Transfer-Encoding", b"x-a",
                                                            b"", b"a\r\nb", b"\x00", b"\xe9\xff"]))
_pair = st.tuples(_hbytes, _hbytes)
_odd_pair = st.one_of(
    st.tuples(_any_text, _hbytes), st.tuples(_hbytes, _any_text), st.tuples(_hbytes),
    st.tuples(_hbytes, _hbytes, _hbytes), st.lists(_hbytes, min_size=2, max_size=2), st.none(),
    st.binary(max_size=2), st.tuples(st.builds(bytearray, _hbytes), _hbytes),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.one_of(_pair, _pair, _pair, _odd_pair), max_size=10))
def test_decode_response_headers_agree(pure, compiled, headers):
    assert outcome(compiled.asgi_hot.decode_response_headers, headers) == outcome(
        pure.asgi_hot.decode_response_headers, headers)


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.integers(-10, 1100), st.integers(), st.booleans(), st.floats(), _any_text, st.none()))
def test_status_line_agrees(pure, compiled, code):
    assert outcome(compiled.asgi_hot.status_line, code) == outcome(pure.asgi_hot.status_line, code)


def test_twins_have_the_same_names(pure, compiled):
    assert tuple(pure.asgi_hot.__all__) == tuple(compiled.asgi_hot.__all__)
