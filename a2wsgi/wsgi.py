"""WSGIMiddleware: a WSGI application served by an ASGI server."""

from ._hot import wsgi_hot

translate_request_headers = wsgi_hot.translate_request_headers

__all__ = ("WSGIMiddleware",)


class WSGIMiddleware:
    """Not implemented yet."""

    def __init__(self, app, workers=10, send_queue_size=10):
        raise NotImplementedError("WSGIMiddleware is not implemented yet")
