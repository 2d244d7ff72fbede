# cython: language_level=3, freethreading_compatible=True
"""Compiled twin of ``a2wsgi/_wsgi_hot.py``: same names, signatures, results and exceptions."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeLatin1
from libc.string cimport memchr

__all__ = ("translate_request_headers",)

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
