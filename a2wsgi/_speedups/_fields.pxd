# cython: language_level=3
"""Header field scans both compiled twins share (cimported; inlined where used). Each twin fills
its own 256-entry tables from its pure module's _TCHAR and _VALUE_CTL with _fill_field_tables."""

from libc.stdint cimport uint64_t
from libc.string cimport memcpy


cdef inline int _fill_field_tables(unsigned char* is_tchar, unsigned char* is_ctl,
                                   bytes tchar, bytes value_ctl) except -1:
    """``is_tchar[b]``: b may be in a field name; ``is_ctl[b]``: b may not be in a field value."""
    cdef Py_ssize_t i
    for i in range(256):
        is_tchar[i] = 0
        is_ctl[i] = 0
    for i in range(len(tchar)):
        is_tchar[<unsigned char>tchar[i]] = 1
    for i in range(len(value_ctl)):
        if not (value_ctl[i] < 0x20 or value_ctl[i] == 0x7F):
            raise ImportError("_first_ctl only looks closer at words with a byte below 0x20 or 0x7F")
        is_ctl[<unsigned char>value_ctl[i]] = 1
    return 0


cdef inline Py_ssize_t _first_not_tchar(const unsigned char* data, Py_ssize_t n,
                                        const unsigned char* is_tchar) noexcept nogil:
    """The index of the first byte of a field name that is not a tchar, or -1."""
    cdef Py_ssize_t i
    for i in range(n):
        if not is_tchar[data[i]]:
            return i
    return -1


cdef inline Py_ssize_t _first_ctl(const unsigned char* data, Py_ssize_t n,
                                  const unsigned char* is_ctl) noexcept nogil:
    """The index of the first byte of a field value that ``is_ctl``, or -1. Eight bytes at a time:
    only a word with a byte below 0x20 or equal to 0x7F (tab included) is looked at byte by byte."""
    cdef uint64_t word, del_xor
    cdef uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL
    cdef Py_ssize_t i = 0, j
    while i + 8 <= n:
        memcpy(&word, data + i, 8)
        del_xor = word ^ (ones * 0x7F)
        # a byte below 0x20 (word - 0x20.. borrows into a clear high bit), or a zero byte of del_xor
        if (((word - ones * 0x20) & ~word) | ((del_xor - ones) & ~del_xor)) & high:
            for j in range(i, i + 8):
                if is_ctl[data[j]]:
                    return j
        i += 8
    while i < n:
        if is_ctl[data[i]]:
            return i
        i += 1
    return -1
