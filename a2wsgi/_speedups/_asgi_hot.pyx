# cython: language_level=3, freethreading_compatible=True
"""Compiled twin of ``a2wsgi/_asgi_hot.py``: same names, signatures, results and exceptions."""

__all__ = ()
