"""Hot paths of the WSGI-app side (ASGI scope -> WSGI environ), pure-Python reference.

Every name here has a twin with the same signature, return values and exceptions in
``a2wsgi/_speedups/_wsgi_hot.pyx``; ``a2wsgi._hot`` chooses one of the two at import time.
Nothing in this module imports the rest of the package.
"""

__all__ = ("translate_request_headers",)


def translate_request_headers(headers):
    """Translate ASGI request headers into WSGI environ keys (PEP 3333, "environ Variables").

    ``headers`` is an iterable of ``(name, value)`` byte pairs, as in the ASGI HTTP scope. Returns a
    new dict: ``content-type`` and ``content-length`` become ``CONTENT_TYPE`` and ``CONTENT_LENGTH``,
    every other name becomes ``HTTP_`` + the name upper-cased with ``-`` turned into ``_``, and the
    values are decoded as latin-1. Repeated headers are joined in order, ``cookie`` with ``"; "``
    (RFC 6265, section 5.4) and the others with ``","`` (RFC 9110, section 5.3). A name containing
    ``_`` is dropped, so that ``x_user`` cannot pose as ``x-user`` once both are ``HTTP_X_USER``.

    Raises ``TypeError`` for an item that is not a pair of ``bytes``, and ``ValueError`` for an empty
    header name.
    """
    environ = {}
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
        if not name:
            raise ValueError("ASGI request header with an empty name (value %r)" % (value,))
        if b"_" in name:
            continue
        key = name.upper().replace(b"-", b"_").decode("latin-1")
        if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
            pass
        else:
            key = "HTTP_" + key
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
    return environ
