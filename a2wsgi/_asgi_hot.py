"""Hot paths of the ASGI-app side (WSGI environ -> ASGI scope), pure-Python reference.

Every name here has a twin with the same signature, return values and exceptions in
``a2wsgi/_speedups/_asgi_hot.pyx``; ``a2wsgi._hot`` chooses one of the two at import time.
Nothing in this module imports the rest of the package.
"""

__all__ = ()
