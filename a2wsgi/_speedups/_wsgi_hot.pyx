# cython: language_level=3, freethreading_compatible=True
"""Compiled twin of ``a2wsgi/_wsgi_hot.py``: same names, signatures, results and exceptions."""

import os
import sys
from operator import index as _index

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.string cimport memchr

__all__ = (
    "translate_request_headers",
    "build_environ",
    "Body",
    "encode_response_headers",
    "parse_status",
)

cdef Py_ssize_t _MAX_SIZE = sys.maxsize

# Read once, at import: a non-empty SCRIPT_NAME in the process environment overrides root_path.
cdef str _ENV_SCRIPT_NAME = os.environ.get("SCRIPT_NAME", "")

cdef enum:
    _STACK_KEY = 128


cdef inline str _environ_key(bytes name):
    """``HTTP_`` + name upper-cased (ASCII only) with ``-`` as ``_``; the two CONTENT_ names bare."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name)
    cdef const char* src = PyBytes_AS_STRING(name)
    cdef char stack[_STACK_KEY + 5]
    cdef char* out = stack
    cdef Py_ssize_t i
    cdef char c
    if n > _STACK_KEY:
        return "HTTP_" + name.upper().replace(b"-", b"_").decode("latin-1")
    out[0] = b'H'; out[1] = b'T'; out[2] = b'T'; out[3] = b'P'; out[4] = b'_'
    for i in range(n):
        c = src[i]
        if b'a' <= c <= b'z':
            c = c - 32
        elif c == b'-':
            c = b'_'
        out[5 + i] = c
    if n == 12 and memcmp_upper(out + 5, b"CONTENT_TYPE", 12):
        return "CONTENT_TYPE"
    if n == 14 and memcmp_upper(out + 5, b"CONTENT_LENGTH", 14):
        return "CONTENT_LENGTH"
    return PyUnicode_DecodeLatin1(out, n + 5, NULL)


cdef inline bint memcmp_upper(const char* a, const char* b, Py_ssize_t n):
    cdef Py_ssize_t i
    for i in range(n):
        if a[i] != b[i]:
            return False
    return True


def translate_request_headers(headers):
    """Translate ASGI request headers into WSGI environ keys; see the pure twin for the rules."""
    cdef dict environ = {}
    cdef dict repeated = None
    cdef list parts
    cdef str key, text
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(
                "ASGI request header must be a (name, value) pair of bytes, got %r" % (pair,)
            ) from None
        if type(name) is not bytes or type(value) is not bytes:
            raise TypeError(
                "ASGI request header must be a (name, value) pair of bytes, got (%s, %s)"
                % (type(name).__name__, type(value).__name__)
            )
        if PyBytes_GET_SIZE(name) == 0:
            raise ValueError("ASGI request header with an empty name (value %r)" % (value,))
        if memchr(PyBytes_AS_STRING(name), b'_', PyBytes_GET_SIZE(name)) != NULL:
            continue
        key = _environ_key(name)
        text = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL)
        if key in environ:
            if repeated is None:
                repeated = {}
            parts = repeated.get(key)
            if parts is None:
                repeated[key] = [environ[key], text]
            else:
                parts.append(text)
        else:
            environ[key] = text
    if repeated is not None:
        for key, parts in repeated.items():
            environ[key] = ("; " if key == "HTTP_COOKIE" else ",").join(parts)
    return environ


cdef inline str _scope_str(scope, str key, str default):
    value = scope.get(key, default)
    if type(value) is not str:
        raise TypeError("ASGI scope %r must be str, got %s" % (key, type(value).__name__))
    return <str>value


cdef inline str _bytes_as_str(str text, str key):
    cdef bytes raw
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError("ASGI scope %r is not encodable as UTF-8: %r" % (key, text)) from None
    return PyUnicode_DecodeLatin1(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), NULL)


cdef inline str _default_port(str scheme):
    return "443" if scheme == "https" else "80"


def build_environ(scope, body, script_name=None):
    """Build the WSGI environ for an ASGI HTTP scope; see the pure twin for the rules."""
    cdef str prefix, path_info, scheme, version, method, path
    cdef Py_ssize_t plen
    if script_name is None:
        script_name = _ENV_SCRIPT_NAME
    elif type(script_name) is not str:
        raise TypeError("script_name must be str or None, got %s" % type(script_name).__name__)
    method_obj = scope["method"]
    if type(method_obj) is not str:
        raise TypeError("ASGI scope 'method' must be str, got %s" % type(method_obj).__name__)
    method = <str>method_obj
    path_obj = scope["path"]
    if type(path_obj) is not str:
        raise TypeError("ASGI scope 'path' must be str, got %s" % type(path_obj).__name__)
    path = <str>path_obj
    if script_name:
        prefix = <str>script_name
    else:
        prefix = _scope_str(scope, "root_path", "")
    query = scope.get("query_string", b"")
    if type(query) is not bytes:
        raise TypeError("ASGI scope 'query_string' must be bytes, got %s" % type(query).__name__)
    scheme = _scope_str(scope, "scheme", "http")
    version = _scope_str(scope, "http_version", "1.1")

    prefix = prefix.rstrip("/")
    path_info = path
    plen = len(prefix)
    if plen and path.startswith(prefix) and (len(path) == plen or path[plen] == "/"):
        path_info = path[plen:]

    cdef dict environ = translate_request_headers(scope.get("headers", ()))
    environ["REQUEST_METHOD"] = method
    environ["SCRIPT_NAME"] = _bytes_as_str(prefix, "root_path")
    environ["PATH_INFO"] = _bytes_as_str(path_info, "path")
    environ["QUERY_STRING"] = PyUnicode_DecodeLatin1(
        PyBytes_AS_STRING(query), PyBytes_GET_SIZE(query), NULL
    )
    environ["SERVER_PROTOCOL"] = "HTTP/" + version

    server = scope.get("server")
    if server:
        host, port = server
        environ["SERVER_NAME"] = str(host)
        environ["SERVER_PORT"] = str(port) if port is not None else _default_port(scheme)
    else:
        environ["SERVER_NAME"] = "localhost"
        environ["SERVER_PORT"] = _default_port(scheme)
    client = scope.get("client")
    if client:
        host, port = client
        environ["REMOTE_ADDR"] = str(host)
        environ["REMOTE_PORT"] = str(port)

    environ["wsgi.version"] = (1, 0)
    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = body
    environ["wsgi.input_terminated"] = True
    environ["wsgi.errors"] = sys.stderr
    environ["wsgi.multithread"] = True
    environ["wsgi.multiprocess"] = True
    environ["wsgi.run_once"] = False
    environ["asgi.scope"] = scope
    return environ


cdef inline Py_ssize_t _size(size) except -2:
    if size is None:
        return -1
    try:
        n = _index(size)
    except TypeError:
        raise TypeError("size must be an integer or None, not %s" % type(size).__name__) from None
    if n < 0:
        return -1
    if n > _MAX_SIZE:
        return _MAX_SIZE
    return n


cdef class Body:
    """``wsgi.input`` streaming the request body; see the pure twin for the contract."""

    cdef object _fetch
    cdef bytes _buf
    cdef Py_ssize_t _pos
    cdef bint _eof

    def __init__(self, fetch):
        if not callable(fetch):
            raise TypeError("Body needs a callable that returns the next piece of the body")
        self._fetch = fetch
        self._buf = b""
        self._pos = 0
        self._eof = False

    cdef bytes _next_piece(self):
        if self._eof:
            return b""
        piece = self._fetch()
        if type(piece) is not bytes:
            raise TypeError("Body fetch() must return bytes, got %s" % type(piece).__name__)
        if PyBytes_GET_SIZE(piece) == 0:
            self._eof = True
        return <bytes>piece

    def read(self, size=-1):
        cdef Py_ssize_t n = _size(size)
        cdef bytes buf = self._buf
        cdef bytes piece
        cdef Py_ssize_t pos = self._pos
        cdef Py_ssize_t avail = PyBytes_GET_SIZE(buf) - pos
        cdef Py_ssize_t need, plen
        cdef list parts
        if n >= 0 and n <= avail:
            self._pos = pos + n
            if pos == 0 and n == PyBytes_GET_SIZE(buf):
                return buf
            return buf[pos:pos + n]
        parts = [buf[pos:]] if avail else []
        self._buf = b""
        self._pos = 0
        need = n - avail
        while n < 0 or need > 0:
            piece = self._next_piece()
            plen = PyBytes_GET_SIZE(piece)
            if plen == 0:
                break
            if n >= 0 and plen > need:
                parts.append(piece[:need])
                self._buf = piece
                self._pos = need
                break
            parts.append(piece)
            need -= plen
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def readline(self, limit=-1):
        cdef Py_ssize_t n = _size(limit)
        cdef Py_ssize_t total = 0, pos, end, blen
        cdef bytes buf
        cdef const char* data
        cdef const char* hit
        cdef bint found
        cdef list parts
        if n == 0:
            return b""
        parts = []
        while True:
            buf = self._buf
            pos = self._pos
            blen = PyBytes_GET_SIZE(buf)
            if pos >= blen:
                buf = self._next_piece()
                pos = 0
                self._buf = buf
                self._pos = 0
                blen = PyBytes_GET_SIZE(buf)
                if blen == 0:
                    break
            end = blen
            if n >= 0 and end - pos > n - total:
                end = pos + (n - total)
            data = PyBytes_AS_STRING(buf)
            hit = <const char*>memchr(data + pos, b'\n', end - pos)
            found = hit != NULL
            if found:
                end = (hit - data) + 1
            if pos == 0 and end == blen:
                parts.append(buf)
            else:
                parts.append(buf[pos:end])
            total += end - pos
            self._pos = end
            if found or total == n:
                break
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def readlines(self, hint=-1):
        cdef Py_ssize_t n = _size(hint)
        cdef Py_ssize_t total = 0
        cdef list lines = []
        while True:
            line = self.readline()
            if not line:
                break
            lines.append(line)
            total += len(line)
            if n > 0 and total > n:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


cdef inline bint _has_ctl(bytes raw):
    cdef const char* data = PyBytes_AS_STRING(raw)
    cdef Py_ssize_t i
    cdef char c
    for i in range(PyBytes_GET_SIZE(raw)):
        c = data[i]
        if c == b'\r' or c == b'\n' or c == 0:
            return True
    return False


cdef inline bytes _latin1(text, str what, pair):
    cdef bytes raw
    if type(text) is not str:
        raise TypeError(
            "WSGI response header %s must be str, got %s in %r" % (what, type(text).__name__, pair)
        )
    try:
        raw = (<str>text).encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("WSGI response header %s is not latin-1: %r" % (what, pair)) from None
    if _has_ctl(raw):
        raise ValueError("WSGI response header %s contains CR, LF or NUL: %r" % (what, pair))
    return raw


def encode_response_headers(headers):
    """Encode WSGI response headers for ``http.response.start``; see the pure twin for the rules."""
    cdef list encoded = []
    cdef bytes raw_name, raw_value
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(
                "WSGI response header must be a (name, value) pair of str, got %r" % (pair,)
            ) from None
        raw_name = _latin1(name, "name", pair).strip(b" \t")
        if PyBytes_GET_SIZE(raw_name) == 0:
            raise ValueError("WSGI response header with an empty name: %r" % (pair,))
        raw_value = _latin1(value, "value", pair)
        encoded.append((raw_name.lower(), raw_value.strip(b" \t")))
    return encoded


def parse_status(status):
    """The status code of a WSGI status line; see the pure twin for the rules."""
    cdef str text
    cdef Py_UCS4 a, b, c
    if type(status) is not str:
        raise TypeError("WSGI status must be str, got %s: %r" % (type(status).__name__, status))
    text = <str>status
    if len(text) >= 4:
        a = text[0]
        b = text[1]
        c = text[2]
        if (
            text[3] == u" "
            and u"1" <= a <= u"9" and u"0" <= b <= u"9" and u"0" <= c <= u"9"
            and u"\r" not in text and u"\n" not in text and u"\0" not in text
        ):
            return (<int>a - 48) * 100 + (<int>b - 48) * 10 + (<int>c - 48)
    raise ValueError('WSGI status must be "NNN reason" (e.g. "200 OK"), got %r' % (status,))
