"""The built-in demo for ``python -m a2wsgi serve``: a small ASGI app, stdlib only.

``/`` streams an HTML page in pieces and says which implementation is active; ``/stream`` streams
plain text lines. The lifespan counts requests and logs its startup and shutdown.
"""

import asyncio
import html
import logging
import platform

logger = logging.getLogger("a2wsgi.demo")

_PAGE_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>a2wsgi demo</title>
<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;line-height:1.5}
code{background:#eee;padding:0 .2rem}</style></head><body>
<h1>An ASGI app on a WSGI server</h1>
<p>This page comes from an ASGI application served by the standard library's WSGI server
through <code>a2wsgi.ASGIMiddleware</code>. It is streamed: each line below is a separate
<code>http.response.body</code> message.</p>
<ul>
"""


def _implementation():
    import a2wsgi
    from a2wsgi import _hot

    return a2wsgi.__version__, a2wsgi.SPEEDUPS, _hot.REASON


async def demo_app(scope, receive, send):
    """ASGI 3 application: lifespan, ``/`` (streamed HTML) and ``/stream`` (streamed text)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["requests"] = [0]
                logger.info("demo: lifespan startup complete")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                logger.info("demo: lifespan shutdown complete")
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    counter = scope.get("state", {}).get("requests")
    if counter is not None:
        counter[0] += 1
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/":
        await _page(scope, send, counter[0] if counter else None)
    elif scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        for n in range(1, 11):
            await send({"type": "http.response.body", "body": b"line %d of 10\n" % n, "more_body": True})
            await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": b""})
    else:
        body = b"Not Found: try / or /stream\n"
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _page(scope, send, count):
    version, speedups, reason = _implementation()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")]})
    lines = [
        "a2wsgi %s" % version,
        "a2wsgi.SPEEDUPS = %s" % speedups,
        "implementation: %s" % reason,
        "Python %s (%s)" % (platform.python_version(), platform.python_implementation()),
        "request %s since startup (lifespan state)" % (count if count is not None else "?"),
        'a streamed text response: <a href="/stream">/stream</a>',
    ]
    await send({"type": "http.response.body", "body": _PAGE_HEAD.encode(), "more_body": True})
    for line in lines:
        item = line if line.startswith("a streamed") else html.escape(line)
        await send({"type": "http.response.body", "body": ("<li>%s</li>\n" % item).encode(), "more_body": True})
        await asyncio.sleep(0.05)
    await send({"type": "http.response.body", "body": b"</ul></body></html>\n"})
