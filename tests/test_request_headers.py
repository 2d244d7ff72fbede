"""ASGI request headers -> WSGI environ keys, for both implementations, plus a differential test."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


def test_basic_translation(hot):
    environ = hot.wsgi_hot.translate_request_headers(
        [(b"host", b"example.com"), (b"content-type", b"text/plain"), (b"content-length", b"5"),
         (b"x-forwarded-for", b"1.2.3.4")]
    )
    assert environ == {
        "HTTP_HOST": "example.com",
        "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": "5",
        "HTTP_X_FORWARDED_FOR": "1.2.3.4",
    }


def test_repeats_joined_cookie_with_semicolon(hot):
    environ = hot.wsgi_hot.translate_request_headers(
        [(b"cookie", b"a=1"), (b"accept", b"text/html"), (b"cookie", b"b=2"),
         (b"accept", b"*/*"), (b"cookie", b"c=3")]
    )
    assert environ["HTTP_COOKIE"] == "a=1; b=2; c=3"
    assert environ["HTTP_ACCEPT"] == "text/html,*/*"


def test_underscore_names_dropped_cannot_spoof(hot):
    environ = hot.wsgi_hot.translate_request_headers(
        [(b"x_user", b"admin"), (b"x-user", b"alice"), (b"content_length", b"999")]
    )
    assert environ == {"HTTP_X_USER": "alice"}


def test_mixed_case_and_latin1(hot):
    environ = hot.wsgi_hot.translate_request_headers(
        [(b"Content-Type", b"a"), (b"X-Caf\xe9", b"\xff\xe9")]
    )
    assert environ == {"CONTENT_TYPE": "a", "HTTP_X-CAF\xe9".replace("-", "_"): "\xff\xe9"}


def test_long_header_name(hot):
    name = b"x-" + b"a" * 300
    environ = hot.wsgi_hot.translate_request_headers([(name, b"v")])
    assert environ == {"HTTP_X_" + "A" * 300: "v"}


@pytest.mark.parametrize(
    "bad, exc",
    [
        ([("host", b"x")], TypeError),
        ([(b"host", "x")], TypeError),
        ([(b"host",)], TypeError),
        ([b"host"], TypeError),
        ([None], TypeError),
        ([(b"", b"x")], ValueError),
    ],
)
def test_bad_headers_name_the_problem(hot, bad, exc):
    with pytest.raises(exc, match="ASGI request header"):
        hot.wsgi_hot.translate_request_headers(bad)


def test_many_repeats_stay_linear_in_output(hot):
    environ = hot.wsgi_hot.translate_request_headers([(b"x-a", b"v")] * 10000)
    assert environ["HTTP_X_A"] == ",".join(["v"] * 10000)


def test_repeats_long_and_short_keep_order(hot):
    a, b, c = "a" * 600, "b\xe9" * 300, "c"
    headers = [(b"x-a", a.encode("latin-1")), (b"cookie", b"k=1"), (b"x-a", b.encode("latin-1")),
               (b"x-a", c.encode("latin-1")), (b"cookie", b"j=2" * 400), (b"cookie", b"z"),
               (b"x-b", b"1"), (b"x-b", b"1"), (b"x-b", b"")]
    environ = hot.wsgi_hot.translate_request_headers(headers)
    assert environ["HTTP_X_A"] == ",".join([a, b, c])
    assert environ["HTTP_COOKIE"] == "; ".join(["k=1", "j=2" * 400, "z"])
    assert environ["HTTP_X_B"] == "1,1,"


@pytest.mark.parametrize("at", [0, 1, 7, 8, 9, 15, 16, 23])
def test_high_byte_anywhere_in_a_value(hot, at):
    value = bytearray(b"a" * 24)
    value[at] = 0xE9
    environ = hot.wsgi_hot.translate_request_headers([(b"x-a", bytes(value))])
    assert environ["HTTP_X_A"] == bytes(value).decode("latin-1")
    assert environ["HTTP_X_A"].encode("latin-1") == bytes(value)


_names = st.one_of(
    st.sampled_from([b"host", b"cookie", b"content-type", b"content-length", b"x-a", b"X-A",
                     b"x_a", b"accept", b"Content-Length", b"", b"\xe9-\xff"]),
    st.binary(max_size=12),
)
_values = st.one_of(
    st.binary(max_size=16),
    st.binary(min_size=7, max_size=40),  # past the compiled twin's eight-bytes-at-a-time scan
    # long ones, so that repeats cross the length where the compiled twin stops joining at once
    st.builds(lambda n, tail: b"v" * n + tail, st.integers(0, 1100), st.binary(max_size=3)),
)
_pair = st.tuples(_names, _values)
_odd = st.one_of(
    _pair,
    st.tuples(st.text(max_size=4), _values),
    st.tuples(_names, st.text(max_size=4)),
    st.tuples(_names),
    st.none(),
    st.binary(max_size=3),
)


def _outcome(func, headers):
    try:
        return ("ok", func(headers))
    except Exception as exc:  # compared by type and message
        return ("error", type(exc), str(exc))


@pytest.mark.c_extension
@settings(max_examples=2_000, deadline=None)
@given(st.lists(st.one_of(_pair, _pair, _pair, _odd), max_size=12))
def test_pure_and_compiled_agree(pure, compiled, headers):
    assert _outcome(compiled.wsgi_hot.translate_request_headers, headers) == _outcome(
        pure.wsgi_hot.translate_request_headers, headers
    )
