"""A minimal Django project in one module, served through WSGIMiddleware by the integration tests.

``A2WSGI_TEST_MARKERS`` names a directory where a stream writes ``closed-<marker>`` once the
server closed it (its generator's ``finally`` runs when the response's ``close()`` is called).
"""

import itertools
import os

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="a2wsgi-integration-tests-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
    DATA_UPLOAD_MAX_MEMORY_SIZE=4 * 1024 * 1024,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402  (after settings)
from django.http import HttpResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

import a2wsgi  # noqa: E402
from a2wsgi import WSGIMiddleware  # noqa: E402

MARKERS = os.environ.get("A2WSGI_TEST_MARKERS", "")
CHUNK = 64 * 1024


def hello(request):
    response = HttpResponse("hello from django")
    response["X-Speedups"] = "1" if a2wsgi.SPEEDUPS else "0"
    response["X-Script-Name"] = request.META["SCRIPT_NAME"]
    return response


def echo(request):
    return HttpResponse(request.body, content_type="application/octet-stream")


def download(request):
    total = int(request.GET.get("mb", "1")) * 1024 * 1024
    block = bytes(range(256)) * (CHUNK // 256)

    def chunks():
        left = total
        while left > 0:
            yield block[:min(left, CHUNK)]
            left -= CHUNK

    response = StreamingHttpResponse(chunks(), content_type="application/octet-stream")
    response["Content-Length"] = str(total)
    return response


def forever(request):
    marker = request.GET.get("marker", "")

    def chunks():
        try:
            for _ in itertools.count():
                yield b"d" * CHUNK
        finally:
            if MARKERS and marker:
                with open(os.path.join(MARKERS, "closed-" + marker), "w") as f:
                    f.write("closed")

    return StreamingHttpResponse(chunks(), content_type="application/octet-stream")


urlpatterns = [
    path("hello", hello),
    path("echo", echo),
    path("download", download),
    path("forever", forever),
]

django_asgi = WSGIMiddleware(get_wsgi_application(), workers=10)
