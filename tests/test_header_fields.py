"""Response header fields, both directions (issue 13 rules 11 and 12): names are RFC 9110 tokens,
values hold no control character but tab; a request with Transfer-Encoding has no CONTENT_LENGTH
and a Content-Length value loses the spaces around it. Every test runs over both implementations;
the Hypothesis tests check that pure and compiled agree exactly, exceptions included."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CTL = [c for c in range(0x20) if c != 0x09] + [0x7F]
NOT_TCHAR = [c for c in range(256) if c not in TCHAR]
EXAMPLES = settings(max_examples=400, deadline=None)


def outcome(func, *args):
    try:
        return ("ok", func(*args))
    except Exception as exc:
        return ("error", type(exc), str(exc))


def test_the_tables_are_the_rfc_ones_in_both_pure_modules(pure):
    for mod in (pure.wsgi_hot, pure.asgi_hot):
        assert mod._TCHAR == TCHAR
        assert mod._VALUE_CTL == bytes(CTL)


# ---- names -------------------------------------------------------------------------------

@pytest.mark.parametrize("c", list(TCHAR), ids=lambda c: "%02x" % c)
def test_every_tchar_is_a_name(hot, c):
    name = b"x" + bytes((c,)) + b"y"
    assert hot.asgi_hot.decode_response_headers([(name, b"v")]) == [(name.decode(), "v")]
    assert hot.wsgi_hot.encode_response_headers([(name.decode(), "v")]) == [(name.lower(), b"v")]


@pytest.mark.parametrize("c", NOT_TCHAR, ids=lambda c: "%02x" % c)
def test_every_other_byte_is_refused_in_a_name(hot, c):
    name = b"x" + bytes((c,)) + b"y"
    with pytest.raises(ValueError) as info:
        hot.asgi_hot.decode_response_headers([(name, b"v")])
    message = str(info.value)
    assert repr(name) in message
    if c in b"\r\n\0":
        assert "contains CR, LF or NUL" in message
    else:
        assert "must be a token" in message and repr(chr(c)) in message
    text = name.decode("latin-1")
    with pytest.raises(ValueError) as info:
        hot.wsgi_hot.encode_response_headers([(text, "v")])
    message = str(info.value)
    assert repr((text, "v")) in message
    assert ("contains CR, LF or NUL" if c in b"\r\n\0" else "must be a token") in message


def test_the_injected_name_of_the_issue_is_refused(hot):
    with pytest.raises(ValueError, match="must be a token.*':'"):
        hot.asgi_hot.decode_response_headers([(b"x-bad: injected", b"v")])
    with pytest.raises(ValueError, match="must be a token.*':'"):
        hot.wsgi_hot.encode_response_headers([("x-bad: injected", "v")])


def test_spaces_around_a_wsgi_name_are_still_removed_but_not_inside(hot):
    assert hot.wsgi_hot.encode_response_headers([(" \tX-A \t", "v")]) == [(b"x-a", b"v")]
    with pytest.raises(ValueError, match="' ' is not allowed"):
        hot.wsgi_hot.encode_response_headers([("X A", "v")])
    with pytest.raises(ValueError, match="' ' is not allowed"):
        hot.asgi_hot.decode_response_headers([(b" x-a", b"v")])


# ---- values ------------------------------------------------------------------------------

@pytest.mark.parametrize("c", CTL, ids=lambda c: "%02x" % c)
@pytest.mark.parametrize("at", [0, 3, 7, 8, 15, 20])
def test_every_control_character_is_refused_in_a_value(hot, c, at):
    # at 0..20 puts it in the first, second and third word of the compiled scan, and in the tail
    value = b"a" * at + bytes((c,)) + b"b" * 4
    with pytest.raises(ValueError) as info:
        hot.asgi_hot.decode_response_headers([(b"x-a", value)])
    message = str(info.value)
    assert "b'x-a'" in message
    assert ("contains CR, LF or NUL" if c in b"\r\n\0" else "control character %r" % chr(c)) in message
    text = value.decode("latin-1")
    with pytest.raises(ValueError) as info:
        hot.wsgi_hot.encode_response_headers([("X-A", text)])
    message = str(info.value)
    assert repr(("X-A", text)) in message
    assert ("contains CR, LF or NUL" if c in b"\r\n\0" else "control character %r" % chr(c)) in message


def test_tab_space_printable_and_obs_text_values_pass(hot):
    value = bytes([0x09]) + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)) + b"\t"
    assert hot.asgi_hot.decode_response_headers([(b"x-a", value)]) == [("x-a", value.decode("latin-1"))]
    # spaces and tabs around a WSGI value are removed (RFC 9110 section 5.5), inside they stay
    assert hot.wsgi_hot.encode_response_headers([("X-A", value.decode("latin-1"))]) == [
        (b"x-a", value.strip(b" \t"))]
    assert hot.wsgi_hot.encode_response_headers([("X-A", "a\tb\xff")]) == [(b"x-a", b"a\tb\xff")]


@pytest.mark.parametrize("value", [b"\x80" * 8, b"\xff" * 9, b"\xa0\x9f\x8a\x8d\x80\xff\xe9\xa9",
                                   b"\t" * 16, b"\xff\x7e\xa0\x20\x21\x9f\xe0\x80"])
def test_words_that_look_like_control_characters_pass(hot, value):
    # high bytes whose low seven bits are control characters, and tabs: the word-at-a-time scan
    # looks closer at such words and must let them through
    assert hot.asgi_hot.decode_response_headers([(b"x-a", value)]) == [("x-a", value.decode("latin-1"))]
    assert hot.wsgi_hot.encode_response_headers([("X-A", value.decode("latin-1"))]) == [
        (b"x-a", value.strip(b" \t"))]


def test_the_first_refused_header_is_named(hot):
    with pytest.raises(ValueError, match="b'x-2'"):
        hot.asgi_hot.decode_response_headers([(b"x-1", b"ok"), (b"x-2", b"\x1b[31m"), (b"x 3", b"v")])


# ---- request Content-Length (W->A build_environ) -----------------------------------------

def scope(headers):
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


@pytest.mark.parametrize("te", [b"chunked", b"gzip, chunked", b"identity", b""])
@pytest.mark.parametrize("order", ["before", "after"])
def test_transfer_encoding_removes_content_length(hot, te, order):
    headers = [(b"content-length", b"4")]
    headers.insert(0 if order == "before" else 1, (b"transfer-encoding", te))
    environ = hot.wsgi_hot.build_environ(scope(headers), None)
    assert "CONTENT_LENGTH" not in environ
    assert environ["HTTP_TRANSFER_ENCODING"] == te.decode()
    assert "CONTENT_LENGTH" not in hot.wsgi_hot.translate_request_headers(headers)


@pytest.mark.parametrize("raw, want", [(b"3  ", "3"), (b"  3", "3"), (b"\t3\t", "3"), (b"3", "3"),
                                       (b" ", ""), (b"", ""), (b"3 4", "3 4"), (b"3,3", "3,3"),
                                       (b"3\x0b", "3\x0b")])
def test_content_length_loses_surrounding_spaces_and_tabs(hot, raw, want):
    environ = hot.wsgi_hot.build_environ(scope([(b"content-length", raw)]), None)
    assert environ["CONTENT_LENGTH"] == want
    assert hot.wsgi_hot.translate_request_headers([(b"Content-Length", raw)])["CONTENT_LENGTH"] == want


def test_content_type_and_length_keys_do_not_depend_on_the_common_table(hot):
    # the bare keys are a rule (PEP 3333), not an entry of the speed-up table; long names take the
    # translating path of the compiled twin
    environ = hot.wsgi_hot.build_environ(scope([(b"CONTENT-type", b"a/b"), (b"Content-LENGTH", b"1")]), None)
    assert environ["CONTENT_TYPE"] == "a/b" and environ["CONTENT_LENGTH"] == "1"
    assert not any(k.startswith("HTTP_CONTENT") for k in environ)


# ---- pure and compiled agree ---------------------------------------------------------------

_field_bytes = st.one_of(
    st.binary(max_size=20),
    st.lists(st.sampled_from(list(TCHAR) + CTL + [0x09, 0x20, 0x80, 0x9f, 0xff, 0x3a]), max_size=20).map(bytes),
)
_pairs = st.lists(st.tuples(_field_bytes, _field_bytes), max_size=5)


@pytest.mark.c_extension
@EXAMPLES
@given(_pairs)
def test_decode_response_headers_fields_agree(pure, compiled, headers):
    assert outcome(compiled.asgi_hot.decode_response_headers, headers) == outcome(
        pure.asgi_hot.decode_response_headers, headers)


@pytest.mark.c_extension
@EXAMPLES
@given(_pairs)
def test_encode_response_headers_fields_agree(pure, compiled, headers):
    pairs = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]
    assert outcome(compiled.wsgi_hot.encode_response_headers, pairs) == outcome(
        pure.wsgi_hot.encode_response_headers, pairs)


_lengths = st.one_of(st.sampled_from([b"3", b"3  ", b" 3", b"\t3 ", b" ", b"", b"1,1", b"x"]),
                     st.binary(max_size=5))
_te = st.one_of(st.none(), st.sampled_from([b"chunked", b"", b"gzip"]))


@pytest.mark.c_extension
@EXAMPLES
@given(st.lists(_lengths, max_size=3), _te, st.sampled_from([b"content-length", b"Content-Length"]),
       st.sampled_from([b"transfer-encoding", b"Transfer-Encoding"]), st.booleans())
def test_content_length_rules_agree(pure, compiled, lengths, te, cl_name, te_name, te_first):
    headers = [(cl_name, v) for v in lengths]
    if te is not None:
        headers.insert(0 if te_first else len(headers), (te_name, te))
    got = outcome(compiled.wsgi_hot.build_environ, scope(headers), None)
    want = outcome(pure.wsgi_hot.build_environ, scope(headers), None)
    if got[0] == "ok":
        got = ("ok", [(k, v) for k, v in got[1].items() if k != "asgi.scope"])
        want = ("ok", [(k, v) for k, v in want[1].items() if k != "asgi.scope"])
    assert got == want
    assert outcome(compiled.wsgi_hot.translate_request_headers, headers) == outcome(
        pure.wsgi_hot.translate_request_headers, headers)


@pytest.mark.c_extension
def test_twins_that_do_not_pay_are_the_pure_functions(pure, compiled):
    # request_body_length, status_line and parse_status: compiled, they saved well under a
    # microsecond per request, so the compiled modules re-export the pure ones
    for module, name in (("asgi_hot", "request_body_length"), ("asgi_hot", "status_line"),
                         ("wsgi_hot", "parse_status")):
        assert getattr(getattr(compiled, module), name) is getattr(getattr(pure, module), name)
    for module in ("asgi_hot", "wsgi_hot"):
        for name in getattr(pure, module).__all__:
            assert hasattr(getattr(compiled, module), name)


@pytest.mark.c_extension
def test_compiled_path_safe_set_is_the_pure_one(pure, compiled):
    # raw_path without REQUEST_URI: the compiled fast path must give what quote_from_bytes gives
    base = {"REQUEST_METHOD": "GET", "SERVER_NAME": "h", "SERVER_PORT": "80", "SCRIPT_NAME": ""}
    for b in range(256):
        environ = dict(base, PATH_INFO="/a" + chr(b) + "b")
        assert compiled.asgi_hot.build_scope(environ)["raw_path"] == pure.asgi_hot.build_scope(environ)["raw_path"]


# ---- through the middlewares ---------------------------------------------------------------

@pytest.mark.parametrize("name, value, what", [(b"x-bad: injected", b"v", "must be a token"),
                                               (b"x-a", b"\x1b[31m", "control character"),
                                               (b"x-a", b"v\x7f", "control character")])
def test_asgi_app_bad_header_gives_a_500_never_sent(impl, caplog, name, value, what):
    from test_asgi_support import call, make_environ
    from a2wsgi import ASGIMiddleware

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(name, value)]})
            await send({"type": "http.response.body", "body": b"x"})

    mw = ASGIMiddleware(app)
    try:
        response = call(mw, make_environ("/"))
    finally:
        close = getattr(mw, "close", None)
        if close is not None:
            close()
    assert [c[0] for c in response.calls] == ["500 Internal Server Error"]
    assert all(n != name.decode("latin-1") for c in response.calls for n, _ in c[1])
    assert what in caplog.text and repr(name) in caplog.text
