"""README's "Tested servers" table is the rows the matrix test modules define, so it cannot claim
more than they show. ``python tests/integration/test_matrix_readme.py`` prints the table (with the
installed versions) to paste between the README's markers; the test compares everything but the
version column."""

import importlib.metadata
import os
import platform
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
START, END = "<!-- tested-servers:start -->", "<!-- tested-servers:end -->"
CHECK_NAMES = {"get": "GET", "echo": "1 MiB POST", "chunked": "chunked upload", "download": "64 MiB download, RSS bounded",
               "error": "error then keep-alive", "leave": "client leaves a stream", "concurrent": "concurrent",
               "lifespan": "lifespan once per worker"}
PACKAGES = [("uvicorn-interface-wsgi", "uvicorn"), ("uvicorn", "uvicorn"), ("gunicorn-uvicorn-worker", "uvicorn-worker"),
            ("gunicorn", "gunicorn"), ("hypercorn", "hypercorn"), ("granian", "granian"), ("daphne", "daphne"),
            ("waitress", "waitress"), ("uwsgi", "uWSGI"), ("mod_wsgi", "mod_wsgi"), ("cheroot", "cheroot"),
            ("gevent", "gevent"), ("functions-framework", "functions-framework"), ("mangum", "mangum")]


def _version(row):
    if row == "wsgiref":
        return "Python %s" % platform.python_version()
    for prefix, dist in PACKAGES:
        if row.startswith(prefix):
            try:
                return "%s %s" % (dist, importlib.metadata.version(dist))
            except importlib.metadata.PackageNotFoundError:
                return "%s (not installed)" % dist
    raise AssertionError("no package known for row %r" % row)


def _checks(checks, module):
    missing = [CHECK_NAMES[c] for c in CHECK_NAMES if c in module.ALL and c not in checks]
    return "all" if not missing else "all but: " + ", ".join(missing)


def rows():
    sys.path[:0] = [HERE, os.path.dirname(HERE)]
    import test_matrix_asgi_side as asgi_side
    import test_matrix_wsgi_side as wsgi_side

    out = []
    for side, module in (("W->A", wsgi_side), ("A->W", asgi_side)):
        for name, (_, checks, notes) in module.ROWS.items():
            out.append((side, name, _version(name), module.FRAMEWORKS[name], _checks(checks, module), notes))
    out.append(("W->A", "mangum", _version("mangum"), wsgi_side.FRAMEWORKS["mangum"],
                "API Gateway v1 and v2 events with a body, twice each", "`Mangum(WSGIMiddleware(app))`"))
    return out


def render():
    lines = ["| side | server | tested version | framework | checks | flags it needs; its own limits |",
             "|---|---|---|---|---|---|"]
    lines += ["| %s |" % " | ".join(row) for row in rows()]
    return "\n".join(lines)


def _mask_versions(table):
    return [re.sub(r"^(\|[^|]*\|[^|]*\|)[^|]*\|", r"\1 - |", line) for line in table.strip().splitlines()]


def test_readme_table_is_the_matrix_rows():
    import pytest

    if not os.path.exists(os.path.join(ROOT, "README.md")):
        pytest.skip("needs the checkout (this is a copy of tests/ only)")
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert START in readme and END in readme, "README has no tested-servers markers"
    table = readme.split(START, 1)[1].split(END, 1)[0]
    assert _mask_versions(table) == _mask_versions(render()), (
        "README's Tested servers table differs from the matrix rows; regenerate it with "
        "`python tests/integration/test_matrix_readme.py`")


if __name__ == "__main__":
    print(render())
