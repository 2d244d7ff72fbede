"""``python -m a2wsgi [info]``: what is installed and which implementation is active."""

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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m a2wsgi", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    info = sub.add_parser("info", help="print the version, the Python and the active implementation")
    info.set_defaults(func=_info)
    args = parser.parse_args(argv)
    func = getattr(args, "func", _info)
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
