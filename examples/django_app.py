"""A minimal Django project in one file, served by uvicorn through WSGIMiddleware.

    uvicorn examples.django_app:app --port 8000
"""

import os

import django
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import path

from a2wsgi import WSGIMiddleware

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
    )
    django.setup()


def index(request):
    return HttpResponse("Hello from Django on an ASGI server!")


def echo(request):
    return JsonResponse({"method": request.method, "size": len(request.body),
                         "path": request.path, "script_name": request.META["SCRIPT_NAME"]})


urlpatterns = [path("", index), path("echo", echo)]

from django.core.wsgi import get_wsgi_application  # noqa: E402  (after settings)

application = get_wsgi_application()
app = WSGIMiddleware(application)
