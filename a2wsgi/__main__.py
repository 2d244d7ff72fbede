"""``a2wsgi [info | serve]`` (or ``python -m a2wsgi``): what is installed and which implementation is active, or
serve an ASGI app on the standard library's threaded WSGI server through ASGIMiddleware."""

import argparse
import platform
import sys


def _info(args):
    import a2wsgi
    from a2wsgi import _hot

    print("a2wsgi %s" % a2wsgi.__version__)
    print("Python %s (%s) on %s" % (platform.python_version(), platform.python_implementation(),
                                    platform.platform()))
    print("implementation: %s" % _hot.REASON)
    print("a2wsgi.SPEEDUPS = %s" % a2wsgi.SPEEDUPS)
    return 0


def _load_app(target):
    """``module:attribute`` (attribute may be dotted), imported with the current directory first on
    ``sys.path``, as ASGI servers do."""
    import importlib
    import os

    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise SystemExit("error: the app must be given as module:attribute, got %r" % target)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        app = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name != module_name:
            raise
        raise SystemExit("error: could not import module %r: %s" % (module_name, exc)) from None
    for name in attribute.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise SystemExit("error: module %r has no attribute %r" % (module_name, attribute)) from None
    return app


def _make_server(host, port, app, threads):
    """wsgiref's WSGI server with one thread per connection (ThreadingMixIn), at most ``threads``
    at a time: more connections wait in the listen backlog."""
    import socketserver
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class ThreadedWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True
        block_on_close = False

        def __init__(self, *a, **kw):
            self._free = threads
            self._slots = threading.Condition()
            super().__init__(*a, **kw)

        def _take_slot(self):
            with self._slots:
                while self._free == 0:
                    self._slots.wait()
                self._free -= 1
            return [False]  # a token: released at most once, whoever releases it

        def _give_slot(self, token):
            with self._slots:
                if not token[0]:
                    token[0] = True
                    self._free += 1
                    self._slots.notify()

        def process_request(self, request, client_address):
            token = self._take_slot()
            try:
                threading.Thread(target=self._serve_one, args=(request, client_address, token),
                                 daemon=True).start()
            except BaseException:  # Ctrl-C while starting the thread: the slot is freed once
                self._give_slot(token)
                raise

        def _serve_one(self, request, client_address, token):
            try:
                self.process_request_thread(request, client_address)
            finally:
                self._give_slot(token)

    class RequestHandler(WSGIRequestHandler):
        def log_message(self, format, *args):
            sys.stderr.write("%s - - [%s] %s\n" % (self.address_string(), self.log_date_time_string(),
                                                   format % args))
            sys.stderr.flush()

    return make_server(host, port, app, server_class=ThreadedWSGIServer, handler_class=RequestHandler)


def _serve(args):
    import logging
    import signal

    import a2wsgi
    from a2wsgi import ASGIMiddleware, _hot

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.app:
        app, what = _load_app(args.app), args.app
    else:
        from a2wsgi._demo import demo_app

        app, what = demo_app, "the built-in demo"
    middleware = ASGIMiddleware(app)
    server = _make_server(args.host, args.port, middleware, args.threads)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    host, port = server.server_address[:2]
    print("a2wsgi %s serving %s on http://%s:%d with up to %d threads (implementation: %s, "
          "a2wsgi.SPEEDUPS = %s). Press Ctrl-C to stop." % (
              a2wsgi.__version__, what, host, port, args.threads, _hot.REASON, a2wsgi.SPEEDUPS), flush=True)
    try:
        # the app's lifespan startup runs now, not at the first request, so that a failure shows at once
        if middleware._start_runtime().failure is not None:
            print("error: the app's lifespan startup failed; not serving", file=sys.stderr, flush=True)
            return 1
        server.serve_forever()
    except KeyboardInterrupt:
        print("Shutting down", flush=True)
    finally:
        server.server_close()
        middleware.close()
    print("Stopped", flush=True)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="a2wsgi", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    info = sub.add_parser("info", help="print the version, the Python and the active implementation")
    info.set_defaults(func=_info)
    serve = sub.add_parser(
        "serve", help="serve an ASGI app (default: a demo) on the stdlib's threaded WSGI server",
        description="Serve an ASGI app through ASGIMiddleware on wsgiref's WSGI server, one thread "
                    "per connection. Without an app, a built-in demo page. Ctrl-C stops it, running "
                    "the app's lifespan shutdown.")
    serve.add_argument("app", nargs="?", help="module:attribute of an ASGI app (default: the demo)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument("--threads", type=int, default=8,
                       help="requests served at the same time (default 8)")
    serve.set_defaults(func=_serve)
    args = parser.parse_args(argv)
    if getattr(args, "threads", 1) < 1:
        parser.error("--threads must be at least 1")
    func = getattr(args, "func", _info)
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
