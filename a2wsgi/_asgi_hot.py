"""Hot paths of the ASGI-app side (WSGI environ -> ASGI scope, ASGI response -> WSGI), pure Python.

Every public name here is also one of ``a2wsgi/_speedups/_asgi_hot.pyx``: a compiled twin with the same
signature, return values and exceptions, or, where compiling does not pay for itself in a
request (measured with callgrind), this module's own function, imported there.
``a2wsgi._hot`` chooses one of the two modules at import time.
Nothing in this module imports the rest of the package.
"""

import re
from urllib.parse import quote_from_bytes

__all__ = (
    "build_headers",
    "build_scope",
    "decode_response_headers",
    "status_line",
    "request_body_length",
)

# RFC 9110 section 15 and the IANA HTTP status code registry. Our own table, so that the phrase
# does not change with the Python version's http.HTTPStatus.
_PHRASES = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    208: "Already Reported", 226: "IM Used",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other",
    304: "Not Modified", 305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict", 410: "Gone",
    411: "Length Required", 412: "Precondition Failed", 413: "Content Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable",
    417: "Expectation Failed", 418: "I'm a Teapot", 421: "Misdirected Request",
    422: "Unprocessable Content", 423: "Locked", 424: "Failed Dependency", 425: "Too Early",
    426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates", 507: "Insufficient Storage", 508: "Loop Detected",
    510: "Not Extended", 511: "Network Authentication Required",
}
# RFC 9110 section 15: an unrecognised code is understood by its class (its first digit).
_CLASS_PHRASES = ("", "Informational", "Success", "Redirection", "Client Error", "Server Error")
_STATUS_LINES = {code: "%d %s" % (code, phrase) for code, phrase in _PHRASES.items()}

# RFC 9110 section 7.6.1 and PEP 3333 ("Other HTTP Features"): hop-by-hop headers belong to the
# server's connection, so an application's are dropped rather than handed to the WSGI server.
_HOP_BY_HOP = frozenset((
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade",
))

# RFC 9110 section 5.6.2: a field name is a token, made of these characters only.
_TCHAR = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 9110 section 5.5: a field value holds no control character but horizontal tab; obs-text
# (0x80-0xFF) is allowed. Every byte here is below 0x20 or is 0x7F (the compiled twin's scan
# relies on it).
_VALUE_CTL = bytes(range(0x00, 0x09)) + bytes(range(0x0A, 0x20)) + b"\x7f"
_NOT_TCHAR = re.compile(b"[^" + re.escape(_TCHAR) + b"]")
_CTL = re.compile(b"[" + b"".join(b"\\x%02x" % c for c in _VALUE_CTL) + b"]")

# Characters RFC 3986 allows unescaped in a path (pchar and "/"), except "%", which must be escaped
# because PATH_INFO is already percent-decoded.
_PATH_SAFE = "/:@!$&'()*+,;="


def status_line(code):
    """The WSGI status string ``"NNN Reason"`` for an ASGI ``status`` (PEP 3333 ``start_response``).

    Any three-digit code is accepted; one without a registered phrase gets its class's name
    (RFC 9110 section 15). Anything else is a ValueError.
    """
    if type(code) is not int:
        raise ValueError("ASGI http.response.start 'status' must be an int, got %s %r"
                         % (type(code).__name__, code))
    line = _STATUS_LINES.get(code)
    if line is not None:
        return line
    if code < 100 or code > 999:
        raise ValueError("ASGI http.response.start 'status' must be a three-digit HTTP status code "
                         "(100-999), got %d" % code)
    first = code // 100
    return "%d %s" % (code, _CLASS_PHRASES[first] if first <= 5 else "Unknown")


def _latin1(value, key):
    """The bytes of a PEP 3333 native string (latin-1); UTF-8 for a server that decoded it already."""
    if type(value) is not str:
        raise TypeError("WSGI environ %r must be a str, got %s" % (key, type(value).__name__))
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def _latin1_only(value, key):
    """The bytes of a PEP 3333 native string that must be latin-1 ("bytes as str"): a character
    above U+00FF is a ValueError naming the key, the character and its index."""
    if type(value) is not str:
        raise TypeError("WSGI environ %r must be a str, got %s" % (key, type(value).__name__))
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError("WSGI environ %r must hold one latin-1 character per byte (PEP 3333), got "
                         "U+%04X at index %d" % (key, ord(value[exc.start]), exc.start)) from None


def _decoded(value, key):
    """PEP 3333 path string (latin-1 code points of the raw bytes) -> the UTF-8 text ASGI expects."""
    return _latin1(value, key).decode("utf-8", "surrogateescape")


# The environ keys of the headers most requests carry, with their ASGI names made once (bytes are
# immutable, so every scope can share them). The compiled twin keeps the same list.
_COMMON_NAMES = {
    key: (key[5:] if key.startswith("HTTP_") else key).lower().replace("_", "-").encode("ascii")
    for key in (
        "HTTP_HOST", "HTTP_USER_AGENT", "HTTP_ACCEPT", "HTTP_ACCEPT_ENCODING", "HTTP_ACCEPT_LANGUAGE",
        "HTTP_CONNECTION", "HTTP_COOKIE", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_REFERER",
        "HTTP_ORIGIN", "HTTP_CACHE_CONTROL", "HTTP_PRAGMA", "HTTP_AUTHORIZATION", "HTTP_IF_NONE_MATCH",
        "HTTP_IF_MODIFIED_SINCE", "HTTP_UPGRADE", "HTTP_UPGRADE_INSECURE_REQUESTS", "HTTP_DNT",
        "HTTP_TE", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
        "HTTP_X_REAL_IP", "HTTP_X_REQUEST_ID", "HTTP_X_REQUESTED_WITH", "HTTP_SEC_FETCH_DEST",
        "HTTP_SEC_FETCH_MODE", "HTTP_SEC_FETCH_SITE", "HTTP_SEC_FETCH_USER", "HTTP_SEC_CH_UA",
        "HTTP_SEC_CH_UA_MOBILE", "HTTP_SEC_CH_UA_PLATFORM", "HTTP_PRIORITY", "HTTP_EXPECT",
        "HTTP_RANGE", "HTTP_IF_RANGE", "HTTP_FORWARDED", "HTTP_VIA",
    )
}


def build_headers(environ):
    """ASGI ``headers`` from a WSGI environ: ``HTTP_*`` keys, plus ``CONTENT_TYPE`` and
    ``CONTENT_LENGTH`` (each once, when present and not empty), as lowercase latin-1 byte pairs.

    ``HTTP_CONTENT_TYPE`` and ``HTTP_CONTENT_LENGTH`` are skipped: PEP 3333 carries those two
    headers without the ``HTTP_`` prefix. A value that is not a str is a TypeError naming the key.
    """
    headers = []
    for key, value in environ.items():
        if type(key) is not str:
            continue
        name = _COMMON_NAMES.get(key)
        if name is not None:
            if key[0] == "C" and not value:  # an empty CONTENT_TYPE or CONTENT_LENGTH
                continue
            headers.append((name, _latin1(value, key)))
            continue
        if key.startswith("HTTP_"):
            if key == "HTTP_CONTENT_TYPE" or key == "HTTP_CONTENT_LENGTH":
                continue
            name = key[5:]
        elif key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
            if not value:
                continue
            name = key
        else:
            continue
        headers.append((_latin1(name.lower().replace("_", "-"), key), _latin1(value, key)))
    return headers


def request_body_length(environ):
    """The request body length from ``CONTENT_LENGTH``: an int >= 0, or None when absent or empty.

    PEP 3333 lets the key be absent or empty. Anything but decimal digits is a ValueError.
    """
    value = environ.get("CONTENT_LENGTH")
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise ValueError("WSGI environ 'CONTENT_LENGTH' must be a str, got %s" % type(value).__name__)
    text = value.strip(" \t")
    if not text or not text.isdigit() or not text.isascii():
        raise ValueError("WSGI environ 'CONTENT_LENGTH' must be a non-negative decimal integer, "
                         "got %r" % value)
    return int(text)


def _http_version(environ):
    protocol = environ.get("SERVER_PROTOCOL")
    if type(protocol) is not str or not protocol:
        return "1.0"
    _, sep, version = protocol.partition("/")
    if not sep or not version:
        return "1.0"
    if version == "2.0":
        return "2"
    if version == "3.0":
        return "3"
    return version


def _raw_path(environ, path_bytes):
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if type(uri) is str and uri:
        if uri[0] != "/":
            # absolute-form (RFC 9112 section 3.2.2): keep only the path of scheme://authority/path
            start = uri.find("://")
            if start >= 0:
                slash = uri.find("/", start + 3)
                uri = uri[slash:] if slash >= 0 else ""
            else:
                uri = ""
        if uri:
            mark = uri.find("?")
            if mark >= 0:
                uri = uri[:mark]
            return _latin1(uri, "REQUEST_URI")
    return quote_from_bytes(path_bytes, _PATH_SAFE).encode("ascii")


def _address(host, port):
    if type(port) is str:
        port = port.strip()
        if port.isdigit() and port.isascii():
            return (host, int(port))
    elif type(port) is int:
        return (host, port)
    return None


def build_scope(environ):
    """The ASGI HTTP connection scope (spec 2.5) for a WSGI environ (PEP 3333).

    ``path`` is ``SCRIPT_NAME`` + ``PATH_INFO`` decoded as UTF-8 (undecodable bytes kept with
    surrogateescape); ``query_string`` is ``QUERY_STRING`` encoded latin-1 (a character above
    U+00FF is a ValueError); ``REQUEST_METHOD``, ``SERVER_NAME`` and ``SERVER_PORT`` are
    required (PEP 3333), a ValueError names the one missing; ``raw_path`` comes from
    ``REQUEST_URI``/``RAW_URI`` when the server gives it;
    ``client`` is present when ``REMOTE_ADDR`` is, with port 0 if ``REMOTE_PORT`` is missing.
    ``scope["wsgi_environ"]`` is the environ itself, as in a2wsgi 1.10.
    """
    method = environ.get("REQUEST_METHOD")
    if type(method) is not str or not method:
        raise ValueError("WSGI environ 'REQUEST_METHOD' must be a non-empty str (PEP 3333), got %r"
                         % (method,))
    if "SERVER_NAME" not in environ or "SERVER_PORT" not in environ:
        raise ValueError("WSGI environ %r is missing (PEP 3333 requires it)"
                         % ("SERVER_NAME" if "SERVER_NAME" not in environ else "SERVER_PORT"))
    script_name = environ.get("SCRIPT_NAME", "")
    path_info = environ.get("PATH_INFO", "")
    root_bytes = _latin1(script_name, "SCRIPT_NAME")
    path_bytes = root_bytes + _latin1(path_info, "PATH_INFO")
    scheme = environ.get("wsgi.url_scheme", "http")
    if type(scheme) is not str or not scheme:
        scheme = "http"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "http_version": _http_version(environ),
        "method": method,
        "scheme": scheme,
        "path": path_bytes.decode("utf-8", "surrogateescape"),
        "raw_path": _raw_path(environ, path_bytes),
        "query_string": _latin1_only(environ.get("QUERY_STRING", ""), "QUERY_STRING"),
        "root_path": root_bytes.decode("utf-8", "surrogateescape"),
        "headers": build_headers(environ),
        "server": None,
        "extensions": {"http.response.pathsend": {}},
        "wsgi_environ": environ,
    }
    server_name = environ.get("SERVER_NAME")
    if type(server_name) is str and server_name:
        scope["server"] = _address(server_name, environ.get("SERVER_PORT"))
        if scope["server"] is None:
            scope["server"] = (server_name, None)
    remote_addr = environ.get("REMOTE_ADDR")
    if type(remote_addr) is str and remote_addr:
        scope["client"] = _address(remote_addr, environ.get("REMOTE_PORT")) or (remote_addr, 0)
    return scope


def _bad_field(name, value):
    """The ValueError for a header whose ``name`` is not a token or whose ``value`` holds a control
    character; the compiled twin raises the same."""
    if _NOT_TCHAR.search(name) is not None:
        if b"\r" in name or b"\n" in name or b"\0" in name:
            return ValueError("ASGI response header name %r contains CR, LF or NUL" % (name,))
        bad = name[_NOT_TCHAR.search(name).start()]
        return ValueError("ASGI response header name %r must be a token (RFC 9110, section 5.6.2), "
                          "%r is not allowed in it" % (name, chr(bad)))
    if b"\r" in value or b"\n" in value or b"\0" in value:
        return ValueError("ASGI response header %r: value %r contains CR, LF or NUL" % (name, value))
    bad = value[_CTL.search(value).start()]
    return ValueError("ASGI response header %r: value %r contains the control character %r "
                      "(RFC 9110, section 5.5, allows only tab)" % (name, value, chr(bad)))


def decode_response_headers(headers):
    """ASGI response ``headers`` (byte pairs) -> the WSGI ``(str, str)`` list (PEP 3333), latin-1.

    A name that is empty or not a token (RFC 9110, section 5.6.2), or a value with a control
    character other than tab (0x00-0x08, 0x0A-0x1F, 0x7F; RFC 9110, section 5.5; bytes 0x80-0xFF
    are allowed as obs-text), is a ValueError naming the header and what is wrong: the WSGI server
    would write it as it is, splitting or corrupting the header block. Hop-by-hop headers are
    dropped. Pairs that are not two bytes objects are a TypeError.
    """
    result = []
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
        if _NOT_TCHAR.search(name) is not None or _CTL.search(value) is not None:
            raise _bad_field(name, value)
        if name.lower() in _HOP_BY_HOP:
            continue
        result.append((name.decode("latin-1"), value.decode("latin-1")))
    return result
