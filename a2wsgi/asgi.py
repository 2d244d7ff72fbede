"""ASGIMiddleware: an ASGI application served by a WSGI server."""

__all__ = ("ASGIMiddleware",)


class ASGIMiddleware:
    """Not implemented yet."""

    def __init__(self, app, wait_time=None, loop=None):
        raise NotImplementedError("ASGIMiddleware is not implemented yet")
