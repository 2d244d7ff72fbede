# cython: language_level=3, freethreading_compatible=True
"""Compiled twin of ``a2wsgi/_asgi_hot.py``: same names, signatures, results and exceptions."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport (PyUnicode_1BYTE_DATA, PyUnicode_1BYTE_KIND, PyUnicode_AsLatin1String,
                              PyUnicode_GET_LENGTH, PyUnicode_KIND)
from cpython.dict cimport PyDict_Copy
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.string cimport memcmp

from a2wsgi._speedups._dicts cimport _get
from a2wsgi._speedups._fields cimport _fill_field_tables, _first_ctl, _first_not_tchar

from urllib.parse import quote_from_bytes

from a2wsgi._asgi_hot import (_COMMON_NAMES as _PURE_COMMON_NAMES, _HOP_BY_HOP as _PURE_HOP_BY_HOP,
                              _PATH_SAFE as _PURE_PATH_SAFE)
# Compiled, these would be the same Python calls and save well under a microsecond per request
# (measured with callgrind): the pure ones are this module's.
from a2wsgi._asgi_hot import request_body_length, status_line

# The field rules and their error messages are the pure twin's, so that the two cannot drift.
from a2wsgi._asgi_hot import _TCHAR, _VALUE_CTL, _bad_field

__all__ = (
    "build_headers",
    "build_scope",
    "decode_response_headers",
    "status_line",
    "request_body_length",
)

# The pure twin's tables, shared (never changed after import), so that the two cannot drift.
cdef frozenset _HOP_BY_HOP = _PURE_HOP_BY_HOP
cdef str _PATH_SAFE = _PURE_PATH_SAFE

# Filled once while the module initialises, only read afterwards, so threads share them without
# locking. _PATH_BYTE_SAFE[b]: quote_from_bytes(bytes([b]), _PATH_SAFE) leaves b as it is, asked of
# quote_from_bytes itself so that the set follows the pure twin's _PATH_SAFE and the stdlib.
cdef unsigned char _IS_TCHAR[256]
cdef unsigned char _IS_CTL[256]
cdef unsigned char _PATH_BYTE_SAFE[256]
_fill_field_tables(_IS_TCHAR, _IS_CTL, _TCHAR, _VALUE_CTL)


cdef void _fill_path_safe() except *:
    cdef int b
    for b in range(256):
        _PATH_BYTE_SAFE[b] = quote_from_bytes(bytes((b,)), _PATH_SAFE) == chr(b)


_fill_path_safe()


cdef inline bytes _latin1(object value, object key):
    if type(value) is not str:
        raise TypeError("WSGI environ %r must be a str, got %s" % (key, type(value).__name__))
    if PyUnicode_KIND(value) == PyUnicode_1BYTE_KIND:
        # a compact str of code points < 256 holds exactly its latin-1 bytes
        return PyBytes_FromStringAndSize(<char *>PyUnicode_1BYTE_DATA(value), PyUnicode_GET_LENGTH(value))
    try:
        return PyUnicode_AsLatin1String(value)
    except UnicodeEncodeError:
        return (<str>value).encode("utf-8", "surrogateescape")


cdef bytes _latin1_only(object value, object key):
    if type(value) is not str:
        raise TypeError("WSGI environ %r must be a str, got %s" % (key, type(value).__name__))
    if PyUnicode_KIND(value) == PyUnicode_1BYTE_KIND:
        return PyBytes_FromStringAndSize(<char *>PyUnicode_1BYTE_DATA(value), PyUnicode_GET_LENGTH(value))
    cdef Py_ssize_t i
    for i in range(PyUnicode_GET_LENGTH(value)):
        if ord((<str>value)[i]) > 0xFF:
            raise ValueError("WSGI environ %r must hold one latin-1 character per byte (PEP 3333), got "
                             "U+%04X at index %d" % (key, ord((<str>value)[i]), i))
    return PyUnicode_AsLatin1String(value)


cdef extern from *:
    """
    /* An environ key byte as it is in an ASGI header name: ASCII letters lower-cased, "_" as "-".
       Only used for keys of ASCII characters. A constant table: no state. */
    static const unsigned char a2wsgi_name_byte[128] = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
        32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47,
        48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
        64, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
        112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 91, 92, 93, 94, 45,
        96, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111,
        112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123, 124, 125, 126, 127,
    };
    """
    const unsigned char a2wsgi_name_byte[128]


cdef enum:
    _SLOTS = 256  # open-addressing table of the common keys: a power of two, mostly empty

cdef struct _Slot:
    Py_ssize_t length   # 0: an empty slot
    const char* key     # the environ key's characters, held by _KEY_BYTES
    Py_ssize_t index    # of its header name in _COMMON_NAMES

# _KEY_BYTES and _COMMON_NAMES: the environ keys of the headers most requests carry and their ASGI
# names, from the pure twin's _COMMON_NAMES so that the two cannot drift. Bytes are immutable, so
# every scope can share the names, and a request pays neither for building them nor for
# lower-casing its keys one byte at a time. All three are filled once by _fill_table() while the
# module initialises (under the import lock) and only read afterwards, so threads share them
# without locking.
cdef _Slot _TABLE[_SLOTS]
cdef tuple _KEY_BYTES
cdef tuple _COMMON_NAMES


cdef inline unsigned int _slot_of(const char* key, Py_ssize_t n) noexcept nogil:
    """A cheap hash of a key of 6 characters or more: its length and four characters past the
    HTTP_ prefix, folded into a slot."""
    cdef unsigned int h = ((<unsigned int>n * 131 + <unsigned char>key[5]) * 131
                           + <unsigned char>key[(n + 5) >> 1]) * 131 + <unsigned char>key[n - 1]
    return (h ^ (h >> 11)) & (_SLOTS - 1)


cdef void _fill_table() except *:
    global _KEY_BYTES, _COMMON_NAMES
    cdef bytes raw
    cdef unsigned int slot
    cdef Py_ssize_t i
    for i in range(_SLOTS):
        _TABLE[i].length = 0
    _KEY_BYTES = tuple(key.encode("ascii") for key in _PURE_COMMON_NAMES)
    _COMMON_NAMES = tuple(_PURE_COMMON_NAMES.values())
    for i in range(len(_KEY_BYTES)):
        raw = _KEY_BYTES[i]
        slot = _slot_of(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw))
        while _TABLE[slot].length != 0:
            slot = (slot + 1) & (_SLOTS - 1)
        _TABLE[slot].length = PyBytes_GET_SIZE(raw)
        _TABLE[slot].key = PyBytes_AS_STRING(raw)
        _TABLE[slot].index = i


_fill_table()


cdef bytes _header_name(str key, Py_ssize_t start):
    """``key[start:]`` lowercased with ``_`` -> ``-``, as latin-1 bytes (or UTF-8 beyond latin-1)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(key) - start
    cdef Py_ssize_t i
    cdef const unsigned char *src
    cdef unsigned char *buf
    cdef unsigned char c
    cdef bytes out
    cdef unsigned int slot
    cdef Py_ssize_t length = PyUnicode_GET_LENGTH(key)
    if PyUnicode_KIND(key) == PyUnicode_1BYTE_KIND:
        if length >= 6:
            src = <const unsigned char *>PyUnicode_1BYTE_DATA(key)
            slot = _slot_of(<const char*>src, length)
            while _TABLE[slot].length != 0:
                if _TABLE[slot].length == length and memcmp(_TABLE[slot].key, src, length) == 0:
                    return <bytes>PyTuple_GET_ITEM(_COMMON_NAMES, _TABLE[slot].index)
                slot = (slot + 1) & (_SLOTS - 1)
        src = <const unsigned char *>PyUnicode_1BYTE_DATA(key) + start
        out = PyBytes_FromStringAndSize(NULL, n)
        buf = <unsigned char *>PyBytes_AS_STRING(out)
        for i in range(n):
            c = src[i]
            if c > 0x7F:
                break  # str.lower() of latin-1 letters must decide, as in the pure version
            buf[i] = a2wsgi_name_byte[c]
        else:
            return out
    return _latin1(key[start:].lower().replace("_", "-"), key)


cdef inline bint _is_1byte_prefixed(str key, const char *prefix, Py_ssize_t n):
    return (PyUnicode_KIND(key) == PyUnicode_1BYTE_KIND and PyUnicode_GET_LENGTH(key) >= n
            and memcmp(PyUnicode_1BYTE_DATA(key), prefix, n) == 0)


cdef inline bint _is_1byte(str key, const char *text, Py_ssize_t n):
    """``key == text`` for an ASCII literal ``text`` of length ``n``, without a call."""
    return (PyUnicode_GET_LENGTH(key) == n and PyUnicode_KIND(key) == PyUnicode_1BYTE_KIND
            and memcmp(PyUnicode_1BYTE_DATA(key), text, n) == 0)


def build_headers(environ):
    """ASGI ``headers`` from a WSGI environ: ``HTTP_*`` keys, plus ``CONTENT_TYPE`` and
    ``CONTENT_LENGTH`` (each once, when present and not empty), as lowercase latin-1 byte pairs."""
    return _build_headers(environ)


cdef list _build_headers(environ):
    cdef list headers = []
    cdef Py_ssize_t start
    for key, value in environ.items():
        if type(key) is not str:
            continue
        if (_is_1byte_prefixed(key, "HTTP_", 5) if PyUnicode_KIND(key) == PyUnicode_1BYTE_KIND
                else (<str>key).startswith("HTTP_")):
            if _is_1byte(key, "HTTP_CONTENT_TYPE", 17) or _is_1byte(key, "HTTP_CONTENT_LENGTH", 19):
                continue
            start = 5
        elif _is_1byte(key, "CONTENT_TYPE", 12) or _is_1byte(key, "CONTENT_LENGTH", 14):
            if not value:
                continue
            start = 0
        else:
            continue
        headers.append((_header_name(key, start), _latin1(value, key)))
    return headers


cdef str _http_version(environ):
    protocol = _get(environ, "SERVER_PROTOCOL", None)
    if type(protocol) is not str or not protocol:
        return "1.0"
    if protocol == "HTTP/1.1":
        return "1.1"
    _, sep, version = (<str>protocol).partition("/")
    if not sep or not version:
        return "1.0"
    if version == "2.0":
        return "2"
    if version == "3.0":
        return "3"
    return version


cdef bytes _raw_path(environ, bytes path_bytes):
    uri = _get(environ, "REQUEST_URI", None) or _get(environ, "RAW_URI", None)
    cdef Py_ssize_t start, slash, mark
    if type(uri) is str and uri:
        if (<str>uri)[0] != "/":
            start = (<str>uri).find("://")
            if start >= 0:
                slash = (<str>uri).find("/", start + 3)
                uri = (<str>uri)[slash:] if slash >= 0 else ""
            else:
                uri = ""
        if uri:
            mark = (<str>uri).find("?")
            if mark >= 0:
                uri = (<str>uri)[:mark]
            return _latin1(uri, "REQUEST_URI")
    if _path_is_safe(path_bytes):
        return path_bytes
    return quote_from_bytes(path_bytes, _PATH_SAFE).encode("ascii")


cdef inline bint _path_is_safe(bytes path):
    """True when ``quote_from_bytes(path, _PATH_SAFE)`` would return the path unchanged."""
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(path)
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(path)
    for i in range(n):
        if not _PATH_BYTE_SAFE[p[i]]:
            return False
    return True


cdef object _address(host, port):
    cdef const unsigned char *digits
    cdef Py_ssize_t i, n
    cdef long long number = 0
    if type(port) is str:
        n = PyUnicode_GET_LENGTH(port)
        if 0 < n <= 18 and PyUnicode_KIND(port) == PyUnicode_1BYTE_KIND:
            # the common case, decimal ASCII digits alone: what int(port.strip()) gives
            digits = <const unsigned char *>PyUnicode_1BYTE_DATA(port)
            for i in range(n):
                if not 0x30 <= digits[i] <= 0x39:
                    break
                number = number * 10 + (digits[i] - 0x30)
            else:
                return (host, number)
        port = (<str>port).strip()
        if (<str>port).isdigit() and (<str>port).isascii():
            return (host, int(port))
    elif type(port) is int:
        return (host, port)
    return None


# Every scope starts as a copy of this one (a copy clones the key table: no insertions), then the
# None values are replaced. Built once at import, never changed or handed out afterwards; the
# keys are in the order of the pure twin's dict display.
cdef dict _SCOPE_TEMPLATE = {
    "type": "http", "asgi": None, "http_version": None, "method": None, "scheme": None,
    "path": None, "raw_path": None, "query_string": None, "root_path": None, "headers": None,
    "server": None, "extensions": None, "wsgi_environ": None,
}


# Each scope gets its own copy (an app may change it); copying clones the key table.
cdef dict _ASGI_VERSIONS = {"version": "3.0", "spec_version": "2.5"}


def build_scope(environ):
    """The ASGI HTTP connection scope (spec 2.5) for a WSGI environ (PEP 3333)."""
    method = _get(environ, "REQUEST_METHOD", None)
    if type(method) is not str or not method:
        raise ValueError("WSGI environ 'REQUEST_METHOD' must be a non-empty str (PEP 3333), got %r"
                         % (method,))
    if "SERVER_NAME" not in environ or "SERVER_PORT" not in environ:
        raise ValueError("WSGI environ %r is missing (PEP 3333 requires it)"
                         % ("SERVER_NAME" if "SERVER_NAME" not in environ else "SERVER_PORT"))
    cdef bytes root_bytes = _latin1(_get(environ, "SCRIPT_NAME", ""), "SCRIPT_NAME")
    cdef bytes path_bytes = root_bytes + _latin1(_get(environ, "PATH_INFO", ""), "PATH_INFO")
    scheme = _get(environ, "wsgi.url_scheme", "http")
    if type(scheme) is not str or not scheme:
        scheme = "http"
    # the values in the order the pure twin's dict display computes them (the same exception
    # wins), set into a copy of the key table
    http_version = _http_version(environ)
    path = path_bytes.decode("utf-8", "surrogateescape")
    raw_path = _raw_path(environ, path_bytes)
    query_string = _latin1_only(_get(environ, "QUERY_STRING", ""), "QUERY_STRING")
    root_path = root_bytes.decode("utf-8", "surrogateescape")
    headers = _build_headers(environ)
    cdef dict scope = PyDict_Copy(_SCOPE_TEMPLATE)
    scope["asgi"] = PyDict_Copy(_ASGI_VERSIONS)
    scope["http_version"] = http_version
    scope["method"] = method
    scope["scheme"] = scheme
    scope["path"] = path
    scope["raw_path"] = raw_path
    scope["query_string"] = query_string
    scope["root_path"] = root_path
    scope["headers"] = headers
    scope["extensions"] = {"http.response.pathsend": {}}
    scope["wsgi_environ"] = environ
    server_name = _get(environ, "SERVER_NAME", None)
    if type(server_name) is str and server_name:
        server = _address(server_name, _get(environ, "SERVER_PORT", None))
        scope["server"] = (server_name, None) if server is None else server
    remote_addr = _get(environ, "REMOTE_ADDR", None)
    if type(remote_addr) is str and remote_addr:
        scope["client"] = _address(remote_addr, _get(environ, "REMOTE_PORT", None)) or (remote_addr, 0)
    return scope


def decode_response_headers(headers):
    """ASGI response ``headers`` (byte pairs) -> the WSGI ``(str, str)`` list (PEP 3333), latin-1."""
    cdef list result = []
    for pair in headers:
        if type(pair) is not tuple and type(pair) is not list:
            raise TypeError("ASGI response header must be a (name, value) pair of bytes, got %s"
                            % type(pair).__name__)
        if len(pair) != 2:
            raise TypeError("ASGI response header must be a (name, value) pair of bytes, got %d items"
                            % len(pair))
        name, value = pair
        if type(name) is not bytes or type(value) is not bytes:
            raise TypeError("ASGI response header %r: name and value must be bytes, got %s and %s"
                            % (name, type(name).__name__, type(value).__name__))
        if not name:
            raise ValueError("ASGI response header with an empty name (value %r)" % (value,))
        if (_first_not_tchar(<const unsigned char*>PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name),
                             _IS_TCHAR) >= 0
                or _first_ctl(<const unsigned char*>PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value),
                              _IS_CTL) >= 0):
            raise _bad_field(name, value)
        if (<bytes>name).lower() in _HOP_BY_HOP:
            continue
        result.append(((<bytes>name).decode("latin-1"), (<bytes>value).decode("latin-1")))
    return result
