"""Compiled twins of the hot-path modules. Import them only through ``a2wsgi._hot``."""
