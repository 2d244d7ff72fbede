"""Start a WSGI server on an attribute of ``matrix_asgi_app`` (default ``app``): ``python matrix_runner.py SERVER PORT [attr]``.
For the servers without a command line of their own: wsgiref, cheroot, gevent (pywsgi after
``monkey.patch_all()``, as gevent's documentation asks)."""

import sys

server, port = sys.argv[1], int(sys.argv[2])
attr = sys.argv[3] if len(sys.argv) > 3 else "app"

if server == "gevent":
    from gevent import monkey

    monkey.patch_all()

import matrix_asgi_app  # noqa: E402

app = getattr(matrix_asgi_app, attr)
if server == "wsgiref":
    from wsgiref.simple_server import make_server

    make_server("127.0.0.1", port, app).serve_forever()
elif server == "cheroot":
    from cheroot import wsgi

    wsgi.Server(("127.0.0.1", port), app, numthreads=8).safe_start()
elif server == "gevent":
    from gevent import pywsgi

    pywsgi.WSGIServer(("127.0.0.1", port), app, log=None).serve_forever()
else:
    raise SystemExit("unknown server %r" % server)
