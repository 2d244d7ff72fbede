"""Serve ``asgi_apps:app`` on the stdlib's wsgiref (threaded) or on waitress, stopping cleanly on
SIGTERM so that the apps' lifespan shutdown runs at exit.

    python asgi_apps_runner.py wsgiref|waitress PORT
"""

import signal
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from asgi_apps import app


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main(kind, port):
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    if kind == "wsgiref":
        server = make_server("127.0.0.1", port, app, server_class=ThreadingWSGIServer,
                             handler_class=QuietHandler)
        try:
            server.serve_forever()
        finally:
            server.server_close()
    else:
        import waitress

        waitress.serve(app, host="127.0.0.1", port=port, threads=8, connection_limit=300, backlog=256,
                       _quiet=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
