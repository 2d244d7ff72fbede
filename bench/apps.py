"""The applications and inputs every implementation is measured with.

WSGI apps are what a W->A bridge wraps, ASGI apps what an A->W bridge wraps. The "native" rows of
the table drive the opposite kind directly, with no bridge. Nothing here imports a2wsgi.
"""

# Body chunks the download apps have produced so far, to count how many a bridge holds ahead of
# the client (issue 3: at most ``send_queue_size``).
PRODUCED = [0]

CHUNK = 64 * 1024
MiB = 1024 * 1024
PIECE = b"x" * CHUNK
ECHO_BODY = b'{"name": "a2wsgi", "op": "echo", "n": 1234567890, "ok": true}'
HELLO = b"Hello, world!"

# A browser-like request: 20 headers, content-type and content-length among them.
HEADERS_20 = [
    (b"host", b"example.com:8000"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-US,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
    (b"content-type", b"application/json"),
    (b"content-length", b"%d" % len(ECHO_BODY)),
    (b"origin", b"https://example.com"),
    (b"referer", b"https://example.com/app/page?x=1"),
    (b"cookie", b"session=0123456789abcdef; theme=dark"),
    (b"cookie", b"csrftoken=fedcba9876543210"),
    (b"connection", b"keep-alive"),
    (b"upgrade-insecure-requests", b"1"),
    (b"sec-fetch-dest", b"document"),
    (b"sec-fetch-mode", b"navigate"),
    (b"sec-fetch-site", b"same-origin"),
    (b"sec-fetch-user", b"?1"),
    (b"priority", b"u=0, i"),
    (b"x-request-id", b"4f1c2a9e-8d7b-4c3a-9e2f-1b0a9c8d7e6f"),
    (b"x-forwarded-for", b"203.0.113.7, 198.51.100.2"),
]


def http_scope(method="POST", path="/app/echo", headers=HEADERS_20, root_path="/app", query_string=b"a=1&b=two"):
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query_string,
        "root_path": root_path,
        "headers": list(headers),
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 54321),
        "extensions": {},
        "state": {},
    }


def wsgi_environ(method="POST", path="/echo", headers=HEADERS_20, body=None, content_length=None,
                 query_string="a=1&b=two"):
    """A WSGI environ as a WSGI server would build it for the same request as ``http_scope``."""
    import io
    import sys

    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "/app",
        "PATH_INFO": path,
        "QUERY_STRING": query_string,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "54321",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": body if body is not None else io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key == "CONTENT_LENGTH":
            continue
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = environ[key] + (";" if key == "HTTP_COOKIE" else ",") + text if key in environ else text
    if content_length is not None:
        environ["CONTENT_LENGTH"] = str(content_length)
    return environ


class VirtualInput:
    """A ``wsgi.input`` of ``size`` bytes that never holds more than one piece."""

    def __init__(self, size):
        self.left = size

    def read(self, n=-1):
        if self.left <= 0:
            return b""
        if n is None or n < 0:
            n = self.left
        n = min(n, self.left)
        self.left -= n
        if n == CHUNK:
            return PIECE
        if n <= CHUNK:
            return PIECE[:n]
        return b"x" * n

    def readline(self, limit=-1):
        return self.read(CHUNK if limit is None or limit < 0 else min(limit, CHUNK))

    def __iter__(self):
        while True:
            piece = self.read(CHUNK)
            if not piece:
                return
            yield piece


# ---- WSGI apps (wrapped by W->A bridges; called directly as the A->W native app) ----

def wsgi_echo(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def wsgi_download(environ, start_response):
    """Streams ``size`` bytes (from the query string ``size=N``) in 64 KiB chunks."""
    total = int(environ["QUERY_STRING"][5:])
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(total))])
    return _pieces(total)


def _pieces(total):
    left = total
    piece = PIECE
    produced = PRODUCED
    while left >= CHUNK:
        left -= CHUNK
        produced[0] += 1
        yield piece
    if left:
        produced[0] += 1
        yield piece[:left]


def wsgi_upload(environ, start_response):
    read = environ["wsgi.input"].read
    n = 0
    while True:
        piece = read(CHUNK)
        if not piece:
            break
        n += len(piece)
    body = b"%d" % n
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def wsgi_hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


# ---- ASGI apps (wrapped by A->W bridges; driven directly as the W->A native app) ----

async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive):
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise OSError("client disconnected during the request body")
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def asgi_echo(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    body = await _read_body(receive)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def asgi_download(scope, receive, send):
    """Streams ``size`` bytes (from the query string ``size=N``) in 64 KiB chunks."""
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    total = int(scope["query_string"][5:])
    await _read_body(receive)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", b"%d" % total)]})
    left = total
    produced = PRODUCED
    while left > CHUNK:
        left -= CHUNK
        produced[0] += 1
        await send({"type": "http.response.body", "body": PIECE, "more_body": True})
    produced[0] += 1
    await send({"type": "http.response.body", "body": PIECE[:left], "more_body": False})


async def asgi_upload(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    n = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise OSError("client disconnected during the request body")
        n += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"%d" % n
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def asgi_hello(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(HELLO))]})
    await send({"type": "http.response.body", "body": HELLO})
