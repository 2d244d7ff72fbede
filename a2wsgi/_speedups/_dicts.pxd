# cython: language_level=3
"""Dict helpers both compiled twins share (cimported; inlined where used, no module of its own)."""

from cpython.dict cimport PyDict_GetItemWithError
from cpython.object cimport PyObject


cdef inline object _get(mapping, str key, default):
    """``mapping.get(key, default)``, without a method call for a plain dict."""
    cdef PyObject* found
    if type(mapping) is dict:
        found = PyDict_GetItemWithError(mapping, key)
        if found == NULL:
            return default
        return <object>found
    return mapping.get(key, default)
