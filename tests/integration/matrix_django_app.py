"""The W->A server matrix's Django app (one module, no database), ``app`` = WSGIMiddleware(it),
with the routes of matrix_wsgi_app: hello, echo, download, error, endless, barrier."""

import os
import threading
import time

import django
from django.conf import settings

settings.configure(DEBUG=False, SECRET_KEY="a2wsgi-matrix-tests-only", ALLOWED_HOSTS=["*"],
                   ROOT_URLCONF=__name__, MIDDLEWARE=[], INSTALLED_APPS=[], DATABASES={}, USE_TZ=True,
                   DATA_UPLOAD_MAX_MEMORY_SIZE=4 * 1024 * 1024)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402  (after settings)
from django.http import HttpResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

import a2wsgi  # noqa: E402
from a2wsgi import WSGIMiddleware  # noqa: E402

MARKERS = os.environ.get("A2WSGI_MARKERS", "/tmp")
CHUNK = bytes(range(256)) * 256
_barriers = {}
_barriers_lock = threading.Lock()


def _marked(response):
    response["X-A2WSGI-Speedups"] = str(a2wsgi.SPEEDUPS)
    return response


def hello(request):
    return _marked(HttpResponse(b"hello"))


def echo(request):
    return _marked(HttpResponse(request.body, content_type="application/octet-stream"))


def download(request):
    chunks = int(request.GET.get("mib", "1")) * 16
    response = StreamingHttpResponse((CHUNK for _ in range(chunks)), content_type="application/octet-stream")
    response["Content-Length"] = str(chunks * len(CHUNK))
    return _marked(response)


def error(request):
    raise RuntimeError("matrix: deliberate error")


def endless(request):
    ident = request.GET["id"]

    def body():
        try:
            while True:
                yield b"data: tick\n\n"
                time.sleep(0.01)
        finally:
            with open(os.path.join(MARKERS, "finally-" + ident), "w") as f:
                f.write(str(os.getpid()))

    return _marked(StreamingHttpResponse(body(), content_type="text/event-stream"))


def barrier(request):
    n, key = int(request.GET["n"]), request.GET["key"]
    with _barriers_lock:
        b = _barriers.setdefault(key, threading.Barrier(n, timeout=30))
    b.wait()
    return _marked(HttpResponse(b"passed"))


urlpatterns = [path("hello", hello), path("echo", echo), path("download", download), path("error", error),
               path("endless", endless), path("barrier", barrier)]
app = WSGIMiddleware(get_wsgi_application())
