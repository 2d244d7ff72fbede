"""Hot paths of the WSGI-app side (ASGI scope -> WSGI environ), pure-Python reference.

Every public name here is also one of ``a2wsgi/_speedups/_wsgi_hot.pyx``: a compiled twin with the same
signature, return values and exceptions, or, where compiling does not pay for itself in a
request (measured with callgrind), this module's own function, imported there.
``a2wsgi._hot`` chooses one of the two modules at import time.
Nothing in this module imports the rest of the package.
"""

import os
import re
import sys
from operator import index as _index

__all__ = (
    "translate_request_headers",
    "build_environ",
    "Body",
    "encode_response_headers",
    "parse_status",
)

_MAX_SIZE = sys.maxsize

# RFC 9110 section 5.6.2: a field name is a token, made of these characters only.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 9110 section 5.5: a field value holds no control character but horizontal tab; obs-text
# (0x80-0xFF) is allowed. Every byte here is below 0x20 or is 0x7F (the compiled twin's scan
# relies on it).
_VALUE_CTL = bytes(range(0x00, 0x09)) + bytes(range(0x0A, 0x20)) + b"\x7f"
_NOT_TCHAR = re.compile(b"[^" + re.escape(_TCHAR) + b"]")
_CTL = re.compile(b"[" + b"".join(b"\\x%02x" % c for c in _VALUE_CTL) + b"]")

# Read once, at import: a non-empty SCRIPT_NAME in the process environment overrides root_path.
_ENV_SCRIPT_NAME = os.environ.get("SCRIPT_NAME", "")


def _environ_key(name):
    key = name.upper().replace(b"-", b"_").decode("latin-1")
    if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
        return key
    return "HTTP_" + key


# Environ keys of the header names most requests carry (ASGI servers send them lower-cased).
_COMMON_KEYS = {
    name: _environ_key(name)
    for name in (
        b"host", b"user-agent", b"accept", b"accept-encoding", b"accept-language", b"connection",
        b"cookie", b"content-type", b"content-length", b"referer", b"origin", b"cache-control",
        b"pragma", b"authorization", b"if-none-match", b"if-modified-since", b"upgrade",
        b"upgrade-insecure-requests", b"dnt", b"te", b"x-forwarded-for", b"x-forwarded-proto",
        b"x-forwarded-host", b"x-real-ip", b"x-request-id", b"x-requested-with", b"sec-fetch-dest",
        b"sec-fetch-mode", b"sec-fetch-site", b"sec-fetch-user", b"sec-ch-ua", b"sec-ch-ua-mobile",
        b"sec-ch-ua-platform", b"priority", b"expect", b"range", b"if-range", b"forwarded", b"via",
    )
}


def translate_request_headers(headers):
    """Translate ASGI request headers into WSGI environ keys (PEP 3333, "environ Variables").

    ``headers`` is an iterable of ``(name, value)`` byte pairs, as in the ASGI HTTP scope. Returns a
    new dict: ``content-type`` and ``content-length`` become ``CONTENT_TYPE`` and ``CONTENT_LENGTH``,
    every other name becomes ``HTTP_`` + the name upper-cased with ``-`` turned into ``_``, and the
    values are decoded as latin-1. Repeated headers are joined in order, ``cookie`` with ``"; "``
    (RFC 6265, section 5.4) and the others with ``","`` (RFC 9110, section 5.3). A name containing
    ``_`` is dropped, so that ``x_user`` cannot pose as ``x-user`` once both are ``HTTP_X_USER``.
    When ``transfer-encoding`` is present there is no ``CONTENT_LENGTH`` (RFC 9112, section 6.3:
    the transfer coding decides the body length); otherwise spaces and tabs around the
    ``content-length`` value are removed (RFC 9110, section 5.5).

    Raises ``TypeError`` for an item that is not a pair of ``bytes``, and ``ValueError`` for an empty
    header name.
    """
    environ = {}
    _translate_into(environ, headers)
    return environ


def _translate_into(environ, headers):
    """Add the environ keys of ASGI request ``headers`` to ``environ``, which holds no ``HTTP_``
    or ``CONTENT_`` key yet (translate_request_headers has the rules)."""
    repeated = None
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
        key = _COMMON_KEYS.get(name)
        if key is None:
            if not name:
                raise ValueError("ASGI request header with an empty name (value %r)" % (value,))
            if b"_" in name:
                continue
            key = _environ_key(name)
        text = value.decode("latin-1")
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
    length = environ.get("CONTENT_LENGTH")
    if length is not None:
        if "HTTP_TRANSFER_ENCODING" in environ:
            del environ["CONTENT_LENGTH"]
        else:
            environ["CONTENT_LENGTH"] = length.strip(" \t")


def _scope_str(scope, key, default):
    value = scope.get(key, default)
    if type(value) is not str:
        raise TypeError("ASGI scope %r must be str, got %s" % (key, type(value).__name__))
    return value


def _bytes_as_str(text, key):
    """PEP 3333 "bytes as str": the UTF-8 bytes of a decoded ASGI path, one char per byte."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("ASGI scope %r is not encodable as UTF-8: %r" % (key, text)) from None


# The keys of every environ, in this order, then the headers: each environ starts as a copy. The
# None values are always replaced; REMOTE_ADDR and REMOTE_PORT are removed when there is no client.
_TEMPLATE = {
    "REQUEST_METHOD": None, "SCRIPT_NAME": None, "PATH_INFO": None, "QUERY_STRING": None,
    "SERVER_PROTOCOL": None, "SERVER_NAME": None, "SERVER_PORT": None,
    "wsgi.version": (1, 0), "wsgi.url_scheme": None, "wsgi.input": None,
    "wsgi.input_terminated": True, "wsgi.errors": None, "wsgi.multithread": True,
    "wsgi.multiprocess": True, "wsgi.run_once": False, "asgi.scope": None,
    "REMOTE_ADDR": None, "REMOTE_PORT": None,
}


def _pair(value):
    """``value`` unpacked into two, with the interpreter's own errors (the compiled twin uses it)."""
    first, second = value
    return first, second


def build_environ(scope, body, script_name=None):
    """Build the WSGI environ (PEP 3333, "environ Variables") for an ASGI HTTP ``scope``.

    ``body`` becomes ``wsgi.input``. ``SCRIPT_NAME`` is ``root_path`` and ``PATH_INFO`` is ``path``
    with that prefix removed, only where it ends at a segment boundary (``/app`` is removed from
    ``/app/x`` and ``/app``, never from ``/application``); a trailing ``/`` of the prefix is not part
    of ``SCRIPT_NAME``. A non-empty ``script_name`` (by default the ``SCRIPT_NAME`` of the process
    environment, read once at import) replaces ``root_path``. Both are the UTF-8 bytes of the decoded
    path read as latin-1, never derived from ``raw_path``; ``QUERY_STRING`` is latin-1.

    Raises ``KeyError`` for a missing ``method`` or ``path``, ``TypeError`` for a value of the
    wrong type, and ``ValueError`` for a path that is not encodable as UTF-8.
    """
    if script_name is None:
        script_name = _ENV_SCRIPT_NAME
    elif type(script_name) is not str:
        raise TypeError("script_name must be str or None, got %s" % type(script_name).__name__)
    method = scope["method"]
    if type(method) is not str:
        raise TypeError("ASGI scope 'method' must be str, got %s" % type(method).__name__)
    path = scope["path"]
    if type(path) is not str:
        raise TypeError("ASGI scope 'path' must be str, got %s" % type(path).__name__)
    prefix = script_name or _scope_str(scope, "root_path", "")
    query = scope.get("query_string", b"")
    if type(query) is not bytes:
        raise TypeError("ASGI scope 'query_string' must be bytes, got %s" % type(query).__name__)
    scheme = _scope_str(scope, "scheme", "http")
    version = _scope_str(scope, "http_version", "1.1")

    prefix = prefix.rstrip("/")
    path_info = path
    if prefix and path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
        path_info = path[len(prefix):]

    environ = _TEMPLATE.copy()
    _translate_into(environ, scope.get("headers", ()))
    environ["REQUEST_METHOD"] = method
    environ["SCRIPT_NAME"] = _bytes_as_str(prefix, "root_path")
    environ["PATH_INFO"] = _bytes_as_str(path_info, "path")
    environ["QUERY_STRING"] = query.decode("latin-1")
    environ["SERVER_PROTOCOL"] = "HTTP/" + version

    server = scope.get("server")
    if server:
        host, port = server
        environ["SERVER_NAME"] = str(host)
        environ["SERVER_PORT"] = str(port) if port is not None else ("443" if scheme == "https" else "80")
    else:
        environ["SERVER_NAME"] = "localhost"
        environ["SERVER_PORT"] = "443" if scheme == "https" else "80"
    client = scope.get("client")
    if client:
        host, port = client
        environ["REMOTE_ADDR"] = str(host)
        environ["REMOTE_PORT"] = str(port)
    else:
        del environ["REMOTE_ADDR"], environ["REMOTE_PORT"]

    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = body
    environ["wsgi.errors"] = sys.stderr
    environ["asgi.scope"] = scope
    return environ


def _size(size):
    """A read size: ``None`` or negative -> -1 (everything); else an int, capped at sys.maxsize."""
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


class Body:
    """``wsgi.input`` (PEP 3333, "Input and Error Streams"), streaming the request body.

    ``fetch()`` is called, only when the buffered data is used up, for the next piece of the body;
    it returns non-empty ``bytes``, or ``b""`` once the body is complete, after which it is never
    called again. Whatever ``fetch`` raises (an ``OSError`` when the client went away) propagates
    from the read. Only the current piece is held; nothing is accumulated beyond what a single
    call returns. ``readlines(hint)`` stops once the lines read exceed ``hint`` bytes, as
    ``io.IOBase.readlines`` does.
    """

    __slots__ = ("_fetch", "_buf", "_pos", "_eof")

    def __init__(self, fetch):
        if not callable(fetch):
            raise TypeError("Body needs a callable that returns the next piece of the body")
        self._fetch = fetch
        self._buf = b""
        self._pos = 0
        self._eof = False

    def _next_piece(self):
        if self._eof:
            return b""
        piece = self._fetch()
        if type(piece) is not bytes:
            raise TypeError("Body fetch() must return bytes, got %s" % type(piece).__name__)
        if not piece:
            self._eof = True
        return piece

    def read(self, size=-1):
        n = _size(size)
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if n >= 0 and n <= avail:
            self._pos = pos + n
            return buf[pos:pos + n]
        parts = [buf[pos:]] if avail else []
        self._buf = b""
        self._pos = 0
        need = n - avail
        while n < 0 or need > 0:
            piece = self._next_piece()
            if not piece:
                break
            if n >= 0 and len(piece) > need:
                parts.append(piece[:need])
                self._buf = piece
                self._pos = need
                break
            parts.append(piece)
            need -= len(piece)
        return b"".join(parts)

    def readline(self, limit=-1):
        n = _size(limit)
        if n == 0:
            return b""
        parts = []
        total = 0
        while True:
            buf = self._buf
            pos = self._pos
            if pos >= len(buf):
                buf = self._next_piece()
                pos = 0
                self._buf = buf
                self._pos = 0
                if not buf:
                    break
            end = len(buf)
            if n >= 0 and end - pos > n - total:
                end = pos + (n - total)
            newline = buf.find(b"\n", pos, end)
            if newline >= 0:
                end = newline + 1
            parts.append(buf[pos:end])
            total += end - pos
            self._pos = end
            if newline >= 0 or total == n:
                break
        return b"".join(parts)

    def readlines(self, hint=-1):
        n = _size(hint)
        lines = []
        total = 0
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


def _latin1(text, what, pair):
    if type(text) is not str:
        raise TypeError(
            "WSGI response header %s must be str, got %s in %r" % (what, type(text).__name__, pair)
        )
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("WSGI response header %s is not latin-1: %r" % (what, pair)) from None


def _bad_field(raw, what, pair):
    """The ValueError for a header ``name`` that is not a token or a ``value`` with a control
    character (``raw``, its bytes, has one); the compiled twin raises the same."""
    if b"\r" in raw or b"\n" in raw or b"\0" in raw:
        return ValueError("WSGI response header %s contains CR, LF or NUL: %r" % (what, pair))
    if what == "name":
        bad = raw[_NOT_TCHAR.search(raw).start()]
        return ValueError("WSGI response header name must be a token (RFC 9110, section 5.6.2), "
                          "%r is not allowed in it: %r" % (chr(bad), pair))
    bad = raw[_CTL.search(raw).start()]
    return ValueError("WSGI response header value contains the control character %r (RFC 9110, "
                      "section 5.5, allows only tab): %r" % (chr(bad), pair))


def encode_response_headers(headers):
    """Encode WSGI response headers (PEP 3333, ``start_response``) for an ASGI
    ``http.response.start`` message: a list of ``(name, value)`` latin-1 ``bytes`` pairs.

    Names are lower-cased (ASGI HTTP spec, "Response Start"); spaces and tabs around a name or a
    value are removed (RFC 9110, section 5.5). A name that is empty or not a token (RFC 9110,
    section 5.6.2), a value with a control character other than tab (0x00-0x08, 0x0A-0x1F, 0x7F;
    RFC 9110, section 5.5; bytes 0x80-0xFF are allowed as obs-text), or text that is not latin-1
    raises ``ValueError`` naming the header and what is wrong; an item that is not a pair of ``str``
    raises ``TypeError``. Nothing is ever sent for a refused header list.
    """
    encoded = []
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError(
                "WSGI response header must be a (name, value) pair of str, got %r" % (pair,)
            ) from None
        raw_name = _latin1(name, "name", pair).strip(b" \t")
        if not raw_name:
            raise ValueError("WSGI response header with an empty name: %r" % (pair,))
        if _NOT_TCHAR.search(raw_name) is not None:
            raise _bad_field(raw_name, "name", pair)
        raw_value = _latin1(value, "value", pair)
        if _CTL.search(raw_value) is not None:
            raise _bad_field(raw_value, "value", pair)
        encoded.append((raw_name.lower(), raw_value.strip(b" \t")))
    return encoded


def parse_status(status):
    """The status code of a WSGI status line (PEP 3333: ``"NNN reason"``, e.g. ``"200 OK"``).

    Returns the code as an int. Raises ``TypeError`` if ``status`` is not ``str`` and
    ``ValueError`` naming the status unless it is three ASCII digits (100 to 999), a space and a
    reason phrase without CR, LF or NUL.
    """
    if type(status) is not str:
        raise TypeError("WSGI status must be str, got %s: %r" % (type(status).__name__, status))
    if (
        len(status) < 4
        or status[3] != " "
        or not ("1" <= status[0] <= "9" and "0" <= status[1] <= "9" and "0" <= status[2] <= "9")
        or "\r" in status
        or "\n" in status
        or "\0" in status
    ):
        raise ValueError('WSGI status must be "NNN reason" (e.g. "200 OK"), got %r' % (status,))
    return (ord(status[0]) - 48) * 100 + (ord(status[1]) - 48) * 10 + (ord(status[2]) - 48)
