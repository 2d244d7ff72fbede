"""Pure and compiled WSGI-side hot paths agree exactly: same results, or the same exception type
and message, for generated scopes, header lists, status lines and body chunkings."""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.c_extension

EXAMPLES = settings(max_examples=400, deadline=None)


def outcome(func, *args):
    try:
        return ("ok", func(*args))
    except Exception as exc:
        return ("error", type(exc), str(exc))


def strip_unstable(result):
    """The scope is the same object on both sides; compare the rest, key order included."""
    if result[0] == "ok" and isinstance(result[1], dict):
        return ("ok", [(k, v) for k, v in result[1].items() if k not in ("asgi.scope",)])
    return result


_paths = st.one_of(
    st.sampled_from(["/", "", "/app", "/app/", "/app/x", "/application", "/caf\xe9/\u20ac", "//a//"]),
    st.text(alphabet=st.sampled_from("/ab\xe9\u20ac\udc80\ud800%"), max_size=10),
)
_header_names = st.one_of(
    st.sampled_from([b"host", b"cookie", b"x-a", b"X-A", b"content-length", b"Content-Type", b"x_a",
                     b"\xe9", b"x-caf\xe9", b"", b"a\r\nb", b"\x00", b"sec-fetch-mode", b"SEC-FETCH-MODE",
                     b"x-" + b"a" * 200, b"x-" + b"a" * 126, b"-", b"tE", b"via", b"viA"]),
    st.binary(max_size=8),
)
_header_values = st.one_of(st.binary(max_size=6), st.sampled_from([b"\xff\xe9", b"a\r\nb", b"\x80", b"\x7f"]))
_header_pair = st.one_of(
    st.tuples(_header_names, _header_values),
    st.tuples(_header_names, _header_values).map(list),
)
_headers = st.one_of(
    st.lists(_header_pair, max_size=8),
    st.lists(_header_pair, max_size=8).map(tuple),
    st.lists(st.one_of(_header_pair, st.tuples(st.text(max_size=2), _header_values), st.tuples(_header_names),
                       st.none(), st.tuples(_header_names, st.text(max_size=2))), max_size=4),
)
_hosts = st.one_of(st.sampled_from(["127.0.0.1", "::1", "/tmp/sock"]), st.integers(0, 3), st.none())
_ports = st.one_of(st.none(), st.integers(0, 65535), st.integers(), st.booleans(), st.sampled_from(["80", "x"]))
_address = st.one_of(
    st.none(),
    st.tuples(_hosts, _ports),
    st.lists(st.one_of(_hosts, _ports), min_size=1, max_size=3),
)
_scope = st.fixed_dictionaries(
    {"method": st.sampled_from(["GET", "POST", "PUT"]), "path": _paths},
    optional={
        "root_path": _paths,
        "query_string": st.one_of(st.binary(max_size=8), st.text(max_size=3)),
        "headers": _headers,
        "scheme": st.sampled_from(["http", "https"]),
        "http_version": st.one_of(st.sampled_from(["1.0", "1.1", "2"]), st.text(max_size=3), st.none()),
        "server": _address,
        "client": _address,
        "type": st.just("http"),
    },
)
_bad_scope = st.one_of(
    _scope,
    _scope.map(lambda s: dict(s, method=None)),
    _scope.map(lambda s: dict(s, path=b"/")),
    _scope.map(lambda s: {k: v for k, v in s.items() if k != "path"}),
    _scope.map(lambda s: dict(s, root_path=3)),
)


@EXAMPLES
@given(_bad_scope, st.one_of(st.none(), st.sampled_from(["", "/app", "/x/"])))
def test_build_environ_agrees(pure, compiled, scope, script_name):
    body = object()
    got = strip_unstable(outcome(compiled.wsgi_hot.build_environ, scope, body, script_name))
    want = strip_unstable(outcome(pure.wsgi_hot.build_environ, scope, body, script_name))
    assert got == want


_text = st.text(alphabet=st.sampled_from("aZ-_ \t:\r\n\0\xe9\u20ac;="), max_size=8)
_header_item = st.one_of(
    st.tuples(_text, _text),
    st.tuples(st.sampled_from(["Content-Type", "X-A", "Set-Cookie"]), _text),
    st.tuples(st.binary(max_size=3), _text),
    st.tuples(_text, st.binary(max_size=3)),
    st.tuples(_text),
    st.none(),
    st.lists(_text, min_size=2, max_size=2),
)


@EXAMPLES
@given(st.lists(_header_item, max_size=6))
def test_encode_response_headers_agrees(pure, compiled, headers):
    assert outcome(compiled.wsgi_hot.encode_response_headers, headers) == outcome(
        pure.wsgi_hot.encode_response_headers, headers
    )


_status = st.one_of(
    st.from_regex(r"\A[0-9]{3} [A-Za-z ]{0,6}\Z"),
    st.text(alphabet=st.sampled_from("0129 aK\r\n\0\t\u0662"), max_size=7),
    st.binary(max_size=6),
    st.integers(),
    st.none(),
)


@EXAMPLES
@given(_status)
def test_parse_status_agrees(pure, compiled, status):
    assert outcome(compiled.wsgi_hot.parse_status, status) == outcome(pure.wsgi_hot.parse_status, status)


def _pieces(data, cuts):
    points = sorted(set(c % (len(data) + 1) for c in cuts))
    out = []
    last = 0
    for point in points + [len(data)]:
        out.append(data[last:point])
        last = point
    return out


_ops = st.lists(
    st.tuples(
        st.sampled_from(["read", "readline", "readlines", "next"]),
        st.one_of(st.none(), st.integers(-3, 40), st.just(1.5), st.just("2")),
    ),
    max_size=12,
)


def run_ops(body_cls, pieces, ops):
    feed = [p for p in pieces if p] + [b""]
    calls = []

    def fetch():
        calls.append(1)
        return feed.pop(0)

    body = body_cls(fetch)
    results = []
    for op, arg in ops:
        if op == "next":
            results.append(outcome(next, body))
        else:
            results.append(outcome(getattr(body, op), arg))
    results.append(outcome(body.read))
    return results, len(calls)


@EXAMPLES
@given(st.binary(max_size=80).map(lambda d: d.replace(b"a", b"\n")), st.lists(st.integers(0, 100), max_size=8), _ops)
def test_body_agrees_and_matches_io(pure, compiled, data, cuts, ops):
    pieces = _pieces(data, cuts)
    got = run_ops(compiled.wsgi_hot.Body, pieces, ops)
    want = run_ops(pure.wsgi_hot.Body, pieces, ops)
    assert got == want
    # the content read is what io.BufferedReader reads from the same bytes, whatever the chunking
    ref = io.BufferedReader(io.BytesIO(data))
    expected = []
    for op, arg in ops:
        if type(arg) is int and arg < -1:
            arg = -1  # io.BufferedReader.read refuses sizes below -1; Body reads all, as BytesIO
        if op == "next":
            expected.append(outcome(next, ref))
        else:
            expected.append(outcome(getattr(ref, op), arg))
    expected.append(outcome(ref.read))
    assert [r[:2] for r in want[0]] == [e[:2] for e in expected]
