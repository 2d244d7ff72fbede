# cython: language_level=3, freethreading_compatible=True
"""Compiled twin of ``a2wsgi/_wsgi_hot.py``: same names, signatures, results and exceptions."""

cimport cython

import os
import sys
from operator import index as _index

# Unpacks what is not a 2-tuple (a list, a wrong length) with the interpreter's own error messages,
# which Cython's unpacking words differently: the twins must raise the same.
from a2wsgi._wsgi_hot import _COMMON_KEYS as _PURE_COMMON_KEYS, _pair
# The field rules and their error messages are the pure twin's, so that the two cannot drift.
from a2wsgi._wsgi_hot import _TCHAR, _VALUE_CTL, _bad_field
# Compiled, it would save well under a microsecond per request (measured with callgrind): the pure
# one is this module's.
from a2wsgi._wsgi_hot import parse_status

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Copy, PyDict_GetItemWithError, PyDict_SetDefault
from cpython.long cimport PyLong_AsLongAndOverflow
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport (PyUnicode_1BYTE_DATA, PyUnicode_DecodeLatin1, PyUnicode_GET_LENGTH,
                              PyUnicode_New, PyUnicode_READ_CHAR)
from libc.stdint cimport uint64_t
from libc.string cimport memchr, memcmp, memcpy

from a2wsgi._speedups._dicts cimport _get
from a2wsgi._speedups._fields cimport _fill_field_tables, _first_ctl, _first_not_tchar

cdef extern from *:
    """
    /* A dict with room for n items, so that building the environ does not resize it several
       times. _PyDict_NewPresized is what CPython's own BUILD_MAP and Cython's dict literals use. */
    #if defined(PYPY_VERSION) || defined(Py_LIMITED_API)
    #define a2wsgi_dict_presized(n) PyDict_New()
    #else
    #define a2wsgi_dict_presized(n) _PyDict_NewPresized(n)
    #endif
    /* The characters of a str that is latin-1 (one byte per character) and their count, or NULL
       for any other str: the encoded bytes are these bytes. Before 3.12 a str made by the
       deprecated wide-char API may not be ready; it takes the checked path. */
    static inline const unsigned char* a2wsgi_latin1_data(PyObject* text, Py_ssize_t* n) {
    #if PY_VERSION_HEX < 0x030C0000
        if (!PyUnicode_IS_READY(text)) return NULL;
    #endif
        if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND) return NULL;
        *n = PyUnicode_GET_LENGTH(text);
        return PyUnicode_1BYTE_DATA(text);
    }
    /* A header name byte as it is in an environ key: ASCII letters upper-cased, "-" as "_"
       (bytes.upper() leaves every other byte alone). A constant table: no state. */
    static const char a2wsgi_key_char[256] = {
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
        32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 95, 46, 47,
        48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63,
        64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
        80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95,
        96, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
        80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 123, 124, 125, 126, 127,
        (char)128, (char)129, (char)130, (char)131, (char)132, (char)133, (char)134, (char)135,
        (char)136, (char)137, (char)138, (char)139, (char)140, (char)141, (char)142, (char)143,
        (char)144, (char)145, (char)146, (char)147, (char)148, (char)149, (char)150, (char)151,
        (char)152, (char)153, (char)154, (char)155, (char)156, (char)157, (char)158, (char)159,
        (char)160, (char)161, (char)162, (char)163, (char)164, (char)165, (char)166, (char)167,
        (char)168, (char)169, (char)170, (char)171, (char)172, (char)173, (char)174, (char)175,
        (char)176, (char)177, (char)178, (char)179, (char)180, (char)181, (char)182, (char)183,
        (char)184, (char)185, (char)186, (char)187, (char)188, (char)189, (char)190, (char)191,
        (char)192, (char)193, (char)194, (char)195, (char)196, (char)197, (char)198, (char)199,
        (char)200, (char)201, (char)202, (char)203, (char)204, (char)205, (char)206, (char)207,
        (char)208, (char)209, (char)210, (char)211, (char)212, (char)213, (char)214, (char)215,
        (char)216, (char)217, (char)218, (char)219, (char)220, (char)221, (char)222, (char)223,
        (char)224, (char)225, (char)226, (char)227, (char)228, (char)229, (char)230, (char)231,
        (char)232, (char)233, (char)234, (char)235, (char)236, (char)237, (char)238, (char)239,
        (char)240, (char)241, (char)242, (char)243, (char)244, (char)245, (char)246, (char)247,
        (char)248, (char)249, (char)250, (char)251, (char)252, (char)253, (char)254, (char)255,
    };
    """
    dict a2wsgi_dict_presized(Py_ssize_t n)
    Py_ssize_t a2wsgi_dict_size "PyDict_GET_SIZE" (dict d)
    const char a2wsgi_key_char[256]
    bint PyUnicode_IS_ASCII(object text)
    const unsigned char* a2wsgi_latin1_data(object text, Py_ssize_t* n)

__all__ = (
    "translate_request_headers",
    "build_environ",
    "Body",
    "encode_response_headers",
    "parse_status",
)

cdef Py_ssize_t _MAX_SIZE = sys.maxsize
cdef enum:
    _JOIN_AT = 1024  # a repeated header's values are joined at once while shorter than this

# Read once, at import: a non-empty SCRIPT_NAME in the process environment overrides root_path.
cdef str _ENV_SCRIPT_NAME = os.environ.get("SCRIPT_NAME", "")

cdef enum:
    _STACK_KEY = 128   # longer header names take the slow path
    _SLOTS = 256       # open-addressing table of the common names: a power of two, mostly empty

# The header names most requests carry: the pure twin's, so that the two cannot drift. Their
# environ keys are made once, interned, so that a request pays neither for building nor for
# hashing them.
_COMMON_NAMES = tuple(_PURE_COMMON_KEYS)

cdef struct _Slot:
    Py_ssize_t length   # 0: an empty slot
    const char* name    # the name upper-cased with "-" as "_", held by _COMMON_FORMS
    Py_ssize_t index    # of its environ key in _COMMON_KEYS

# Filled once by _fill_table() while the module initialises (under the import lock); only read
# afterwards, so threads share them without locking. _RAW_TABLE finds a common name as servers
# send it (lower case, so most requests need no per-byte translation); _TABLE finds it in any case
# once translated.
cdef _Slot _TABLE[_SLOTS]
cdef _Slot _RAW_TABLE[_SLOTS]
cdef tuple _COMMON_FORMS
cdef tuple _COMMON_KEYS


cdef inline unsigned int _slot_of(unsigned int h) noexcept nogil:
    return (h ^ (h >> 11)) & (_SLOTS - 1)


cdef inline unsigned int _form_hash(const char* form, Py_ssize_t n) noexcept nogil:
    """A cheap hash of a non-empty name: its length, first, middle and last characters."""
    return ((<unsigned int>n * 131 + <unsigned char>form[0]) * 131
            + <unsigned char>form[n >> 1]) * 131 + <unsigned char>form[n - 1]


cdef void _insert(_Slot* table, bytes text, Py_ssize_t index):
    """Put ``text`` (kept alive by a module tuple) into the first free slot from its hash on."""
    cdef unsigned int slot = _slot_of(_form_hash(PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text)))
    while table[slot].length != 0:
        slot = (slot + 1) & (_SLOTS - 1)
    table[slot].length = PyBytes_GET_SIZE(text)
    table[slot].name = PyBytes_AS_STRING(text)
    table[slot].index = index


cdef void _fill_table() except *:
    global _COMMON_FORMS, _COMMON_KEYS
    cdef Py_ssize_t i
    for i in range(_SLOTS):
        _TABLE[i].length = 0
        _RAW_TABLE[i].length = 0
    # the environ keys are the pure twin's, interned; the forms are the names as translated
    _COMMON_KEYS = tuple(sys.intern(_PURE_COMMON_KEYS[name]) for name in _COMMON_NAMES)
    _COMMON_FORMS = tuple((<bytes>name).upper().replace(b"-", b"_") for name in _COMMON_NAMES)
    for i in range(len(_COMMON_NAMES)):
        _insert(_TABLE, _COMMON_FORMS[i], i)
        _insert(_RAW_TABLE, _COMMON_NAMES[i], i)


_fill_table()

# Filled once while the module initialises, only read afterwards (as the tables above).
cdef unsigned char _IS_TCHAR[256]
cdef unsigned char _IS_CTL[256]
_fill_field_tables(_IS_TCHAR, _IS_CTL, _TCHAR, _VALUE_CTL)


cdef object _long_key(bytes name):
    """_environ_key for a name longer than the stack buffer; None when it holds ``_``."""
    if b"_" in name:
        return None
    key = name.upper().replace(b"-", b"_").decode("latin-1")
    if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
        return key
    return "HTTP_" + key


cdef object _environ_key(bytes name):
    """The environ key of a non-empty header name: ``HTTP_`` + the name upper-cased (ASCII only)
    with ``-`` as ``_``, the two CONTENT_ names bare; None for a name holding ``_`` (dropped)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name)
    cdef const unsigned char* src = <const unsigned char*>PyBytes_AS_STRING(name)
    cdef char stack[_STACK_KEY + 5]
    cdef char* form = stack + 5
    cdef unsigned int slot
    cdef unsigned char c
    cdef Py_ssize_t i
    if n > _STACK_KEY:
        return _long_key(name)
    slot = _slot_of(_form_hash(<const char*>src, n))
    while _RAW_TABLE[slot].length != 0:
        if _RAW_TABLE[slot].length == n and memcmp(_RAW_TABLE[slot].name, src, n) == 0:
            return <object>PyTuple_GET_ITEM(_COMMON_KEYS, _RAW_TABLE[slot].index)
        slot = (slot + 1) & (_SLOTS - 1)
    for i in range(n):
        c = src[i]
        if c == b'_':
            return None
        form[i] = a2wsgi_key_char[c]
    slot = _slot_of(_form_hash(form, n))
    while _TABLE[slot].length != 0:
        if _TABLE[slot].length == n and memcmp(_TABLE[slot].name, form, n) == 0:
            return <object>PyTuple_GET_ITEM(_COMMON_KEYS, _TABLE[slot].index)
        slot = (slot + 1) & (_SLOTS - 1)
    # the two names PEP 3333 carries without the HTTP_ prefix, whether or not the table has them
    if (n == 12 and memcmp(form, b"CONTENT_TYPE", 12) == 0) or (
            n == 14 and memcmp(form, b"CONTENT_LENGTH", 14) == 0):
        return PyUnicode_DecodeLatin1(form, n, NULL)
    stack[0] = b'H'; stack[1] = b'T'; stack[2] = b'T'; stack[3] = b'P'; stack[4] = b'_'
    return PyUnicode_DecodeLatin1(stack, n + 5, NULL)


cdef inline str _latin1_text(bytes raw):
    """``raw.decode("latin-1")``: one scan for the widest byte, one copy."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef const unsigned char* src = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef uint64_t word, high = 0
    cdef Py_ssize_t i = 0
    cdef str text
    if n < 2:
        return PyUnicode_DecodeLatin1(<const char*>src, n, NULL)  # the cached "" and 1-char strs
    while i + 8 <= n:  # eight bytes at a time: is any of them above 127?
        memcpy(&word, src + i, 8)
        high |= word
        i += 8
    while i < n:
        high |= src[i]
        i += 1
    text = PyUnicode_New(n, 255 if high & 0x8080808080808080ULL else 127)
    memcpy(PyUnicode_1BYTE_DATA(text), src, n)
    return text


cdef str _join_values(str first, str text, bint cookie):
    """``first + sep + text`` for two header values made by _latin1_text (one byte per
    character), sep being "; " for cookies and "," otherwise: one allocation, three copies."""
    cdef Py_ssize_t a = PyUnicode_GET_LENGTH(first), b = PyUnicode_GET_LENGTH(text)
    cdef Py_ssize_t gap = 2 if cookie else 1
    cdef str joined = PyUnicode_New(
        a + gap + b, 127 if PyUnicode_IS_ASCII(first) and PyUnicode_IS_ASCII(text) else 255)
    cdef char* out = <char*>PyUnicode_1BYTE_DATA(joined)
    memcpy(out, PyUnicode_1BYTE_DATA(first), a)
    if cookie:
        out[a] = b';'
        out[a + 1] = b' '
    else:
        out[a] = b','
    memcpy(out + a + gap, PyUnicode_1BYTE_DATA(text), b)
    return joined


cdef int _translate_into(dict environ, headers) except -1:
    """Add the environ keys of ASGI request ``headers`` to ``environ`` (which holds no HTTP_ or
    CONTENT_ key yet); see the pure twin's translate_request_headers for the rules."""
    cdef dict repeated = None
    cdef list parts
    cdef PyObject* found
    cdef Py_ssize_t size = len(environ)
    for pair in headers:
        if type(pair) is tuple and PyTuple_GET_SIZE(pair) == 2:
            name = <object>PyTuple_GET_ITEM(pair, 0)
            value = <object>PyTuple_GET_ITEM(pair, 1)
        else:
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
        key = _environ_key(<bytes>name)
        if key is None:
            continue
        text = _latin1_text(<bytes>value)
        # one lookup: inserts the value, or leaves the first one there for a repeated header
        found = PyDict_SetDefault(environ, key, text)
        if a2wsgi_dict_size(environ) != size:
            size += 1
            continue
        # A repeated header (found is the value so far). Short values are joined at once (the
        # usual case: one string, no list); past _JOIN_AT characters the parts are collected and
        # joined once at the end, so that many repeats cost linear time, not quadratic.
        first = <str>found
        if repeated is None or key not in repeated:
            if PyUnicode_GET_LENGTH(first) + PyUnicode_GET_LENGTH(text) < _JOIN_AT:
                environ[key] = _join_values(first, text, key == "HTTP_COOKIE")
                continue
            if repeated is None:
                repeated = {}
            repeated[key] = [first, text]
        else:
            (<list>repeated[key]).append(text)
    if repeated is not None:
        for key, parts in repeated.items():
            environ[key] = ("; " if key == "HTTP_COOKIE" else ",").join(parts)
    found = PyDict_GetItemWithError(environ, "CONTENT_LENGTH")
    if found != NULL:
        if "HTTP_TRANSFER_ENCODING" in environ:  # RFC 9112 section 6.3: the coding decides
            del environ["CONTENT_LENGTH"]
        else:
            stripped = _strip_ows(<str>found)
            if stripped is not <object>found:
                environ["CONTENT_LENGTH"] = stripped
    return 0


cdef inline str _strip_ows(str text):
    """``text.strip(" \t")``, without a call when there is nothing to strip."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef Py_UCS4 first, last
    if n == 0:
        return text
    first = PyUnicode_READ_CHAR(text, 0)
    last = PyUnicode_READ_CHAR(text, n - 1)
    if first != 0x20 and first != 0x09 and last != 0x20 and last != 0x09:
        return text
    return text.strip(" \t")


def translate_request_headers(headers):
    """Translate ASGI request headers into WSGI environ keys; see the pure twin for the rules."""
    cdef dict environ = {}
    _translate_into(environ, headers)
    return environ


cdef inline object _item(scope, str key):
    """``scope[key]``, without a method call for a plain dict."""
    cdef PyObject* found
    if type(scope) is dict:
        found = PyDict_GetItemWithError(scope, key)
        if found == NULL:
            raise KeyError(key)
        return <object>found
    return scope[key]


cdef inline str _scope_str(scope, str key, str default):
    value = _get(scope, key, default)
    if type(value) is not str:
        raise TypeError("ASGI scope %r must be str, got %s" % (key, type(value).__name__))
    return <str>value


cdef str _bytes_as_str(str text, str key):
    """PEP 3333 "bytes as str": the UTF-8 bytes of a decoded ASGI path, one char per byte."""
    cdef bytes raw
    if PyUnicode_IS_ASCII(text):
        return text  # its UTF-8 bytes are its characters
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError("ASGI scope %r is not encodable as UTF-8: %r" % (key, text)) from None
    return PyUnicode_DecodeLatin1(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), NULL)


cdef inline str _rstrip_slash(str text):
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
    cdef Py_ssize_t end = n
    while end > 0 and PyUnicode_READ_CHAR(text, end - 1) == 0x2F:
        end -= 1
    return text if end == n else text[:end]


cdef inline str _default_port(str scheme):
    return "443" if scheme == "https" else "80"


cdef str _as_str(value):
    """``str(value)``, formatted here for an int from 0 up (a port) and as is for a str."""
    cdef char digits[24]
    cdef int overflow = 0
    cdef long number
    cdef Py_ssize_t at = 24
    cdef str text
    if type(value) is str:
        return <str>value
    if type(value) is int:
        number = PyLong_AsLongAndOverflow(value, &overflow)
        if overflow == 0 and 0 <= number < 1000000000:
            while True:
                at -= 1
                digits[at] = <char>(48 + number % 10)
                number //= 10
                if number == 0:
                    break
            text = PyUnicode_New(24 - at, 127)
            memcpy(PyUnicode_1BYTE_DATA(text), digits + at, 24 - at)
            return text
    return str(value)


# Every environ starts as a copy of this one (a copy clones the key table: no insertions, no
# resizes); then the headers are added and the None values replaced. Built once while the module
# initialises, never changed or handed out afterwards. The pure twin uses the same key order.
cdef dict _TEMPLATE


cdef dict _make_template():
    cdef dict template = {
        "REQUEST_METHOD": None, "SCRIPT_NAME": None, "PATH_INFO": None, "QUERY_STRING": None,
        "SERVER_PROTOCOL": None, "SERVER_NAME": None, "SERVER_PORT": None,
        "wsgi.version": (1, 0), "wsgi.url_scheme": None, "wsgi.input": None,
        "wsgi.input_terminated": True, "wsgi.errors": None, "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "asgi.scope": None,
        "REMOTE_ADDR": None, "REMOTE_PORT": None,
    }
    # Grow its table with a few placeholders, removed again, so that the copies (which keep the
    # table's size) hold about 20 headers before they need a resize.
    placeholders = [" %d" % i for i in range(4)]
    for key in placeholders:
        template[key] = None
    for key in placeholders:
        del template[key]
    return template


_TEMPLATE = _make_template()


cdef inline str _protocol(str version):
    if version == "1.1":
        return "HTTP/1.1"
    if version == "1.0":
        return "HTTP/1.0"
    return "HTTP/" + version


cdef inline tuple _address(value):
    """A scope's ``server`` or ``client`` as a (host, port) tuple: itself when it is one, else
    unpacked by the pure twin's _pair (same errors as the interpreter's own unpacking)."""
    if type(value) is tuple and PyTuple_GET_SIZE(value) == 2:
        return <tuple>value
    return _pair(value)


def build_environ(scope, body, script_name=None):
    """Build the WSGI environ for an ASGI HTTP scope; see the pure twin for the rules."""
    cdef str prefix, path_info, scheme, version, method, path
    cdef Py_ssize_t plen
    cdef dict environ
    cdef tuple address
    if script_name is None:
        script_name = _ENV_SCRIPT_NAME
    elif type(script_name) is not str:
        raise TypeError("script_name must be str or None, got %s" % type(script_name).__name__)
    method_obj = _item(scope, "method")
    if type(method_obj) is not str:
        raise TypeError("ASGI scope 'method' must be str, got %s" % type(method_obj).__name__)
    method = <str>method_obj
    path_obj = _item(scope, "path")
    if type(path_obj) is not str:
        raise TypeError("ASGI scope 'path' must be str, got %s" % type(path_obj).__name__)
    path = <str>path_obj
    if script_name:
        prefix = <str>script_name
    else:
        prefix = _scope_str(scope, "root_path", "")
    query = _get(scope, "query_string", b"")
    if type(query) is not bytes:
        raise TypeError("ASGI scope 'query_string' must be bytes, got %s" % type(query).__name__)
    scheme = _scope_str(scope, "scheme", "http")
    version = _scope_str(scope, "http_version", "1.1")

    prefix = _rstrip_slash(prefix)
    path_info = path
    plen = PyUnicode_GET_LENGTH(prefix)
    if plen and path.startswith(prefix) and (
        PyUnicode_GET_LENGTH(path) == plen or PyUnicode_READ_CHAR(path, plen) == 0x2F
    ):
        path_info = path[plen:]

    environ = PyDict_Copy(_TEMPLATE)
    _translate_into(environ, _get(scope, "headers", ()))
    environ["REQUEST_METHOD"] = method
    environ["SCRIPT_NAME"] = _bytes_as_str(prefix, "root_path")
    environ["PATH_INFO"] = _bytes_as_str(path_info, "path")
    environ["QUERY_STRING"] = _latin1_text(<bytes>query)
    environ["SERVER_PROTOCOL"] = _protocol(version)

    server = _get(scope, "server", None)
    if server:
        address = _address(server)
        host = address[0]
        port = address[1]
        environ["SERVER_NAME"] = _as_str(host)
        environ["SERVER_PORT"] = _as_str(port) if port is not None else _default_port(scheme)
    else:
        environ["SERVER_NAME"] = "localhost"
        environ["SERVER_PORT"] = _default_port(scheme)
    client = _get(scope, "client", None)
    if client:
        address = _address(client)
        host = address[0]
        port = address[1]
        environ["REMOTE_ADDR"] = _as_str(host)
        environ["REMOTE_PORT"] = _as_str(port)
    else:
        del environ["REMOTE_ADDR"]
        del environ["REMOTE_PORT"]

    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = body
    environ["wsgi.errors"] = sys.stderr
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
    """``wsgi.input`` streaming the request body; see the pure twin for the contract.

    The reading methods hold the object's critical section: on a free-threaded interpreter two
    threads reading one Body cannot tear its buffer (a no-op with the GIL).
    """

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

    @cython.critical_section
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

    @cython.critical_section
    def readline(self, limit=-1):
        return self._readline(_size(limit))

    cdef bytes _readline(self, Py_ssize_t n):
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

    @cython.critical_section
    def readlines(self, hint=-1):
        cdef Py_ssize_t n = _size(hint)
        cdef Py_ssize_t total = 0
        cdef list lines = []
        while True:
            line = self._readline(-1)
            if not line:
                break
            lines.append(line)
            total += len(line)
            if n > 0 and total > n:
                break
        return lines

    def __iter__(self):
        return self

    @cython.critical_section
    def __next__(self):
        line = self._readline(-1)
        if not line:
            raise StopIteration
        return line


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
    return raw


cdef inline Py_ssize_t _trim_ows(const unsigned char* data, Py_ssize_t n,
                                 Py_ssize_t* start) noexcept nogil:
    """``bytes.strip(b" \\t")`` of ``data[:n]`` as two indices: sets ``*start`` past the leading
    spaces and tabs and returns the end before the trailing ones."""
    cdef Py_ssize_t first = 0, end = n
    while first < end and (data[first] == 0x20 or data[first] == 0x09):
        first += 1
    while end > first and (data[end - 1] == 0x20 or data[end - 1] == 0x09):
        end -= 1
    start[0] = first
    return end


cdef object _encoded_pair(pair):
    """The encoded ``(name, value)`` of a header that is a tuple of two latin-1 str and passes
    every rule, made from the str's own bytes in one pass each (no method calls); None for any
    other header, which the checked path then encodes or refuses with its error."""
    cdef const unsigned char* name_data
    cdef const unsigned char* value_data
    cdef Py_ssize_t name_len, value_len, start, end, i
    cdef unsigned char c
    cdef bytes raw_name
    cdef char* out
    if type(pair) is not tuple or PyTuple_GET_SIZE(pair) != 2:
        return None
    name = <object>PyTuple_GET_ITEM(pair, 0)
    value = <object>PyTuple_GET_ITEM(pair, 1)
    if type(name) is not str or type(value) is not str:
        return None
    name_data = a2wsgi_latin1_data(name, &name_len)
    value_data = a2wsgi_latin1_data(value, &value_len)
    if name_data == NULL or value_data == NULL:
        return None
    end = _trim_ows(name_data, name_len, &start)
    if start == end or _first_not_tchar(name_data + start, end - start, _IS_TCHAR) >= 0:
        return None
    if _first_ctl(value_data, value_len, _IS_CTL) >= 0:
        return None
    raw_name = PyBytes_FromStringAndSize(NULL, end - start)
    out = PyBytes_AS_STRING(raw_name)
    for i in range(end - start):
        c = name_data[start + i]
        out[i] = <char>(c + 32 if 0x41 <= c <= 0x5A else c)  # bytes.lower(): ASCII letters only
    end = _trim_ows(value_data, value_len, &start)
    return (raw_name, PyBytes_FromStringAndSize(<const char*>value_data + start, end - start))


def encode_response_headers(headers):
    """Encode WSGI response headers for ``http.response.start``; see the pure twin for the rules."""
    cdef list encoded = []
    cdef bytes raw_name, raw_value
    for pair in headers:
        done = _encoded_pair(pair)
        if done is not None:
            encoded.append(done)
            continue
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(
                "WSGI response header must be a (name, value) pair of str, got %r" % (pair,)
            ) from None
        raw_name = _latin1(name, "name", pair).strip(b" \t")
        if PyBytes_GET_SIZE(raw_name) == 0:
            raise ValueError("WSGI response header with an empty name: %r" % (pair,))
        if _first_not_tchar(<const unsigned char*>PyBytes_AS_STRING(raw_name),
                            PyBytes_GET_SIZE(raw_name), _IS_TCHAR) >= 0:
            raise _bad_field(raw_name, "name", pair)
        raw_value = _latin1(value, "value", pair)
        if _first_ctl(<const unsigned char*>PyBytes_AS_STRING(raw_value),
                      PyBytes_GET_SIZE(raw_value), _IS_CTL) >= 0:
            raise _bad_field(raw_value, "value", pair)
        encoded.append((raw_name.lower(), raw_value.strip(b" \t")))
    return encoded
