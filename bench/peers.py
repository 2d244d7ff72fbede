"""Where each implementation comes from, and the environment of the process that measures it.

Upstream a2wsgi 1.10.10 has the same import name as this package, so it is installed into its own
target directory (``bench/.peers/upstream``, ignored by git) and only ever imported in a process
that has that directory first on ``sys.path``, or under another module name (``load_upstream``).
"""

import importlib.util
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM_VERSION = "1.10.10"
UPSTREAM_DIR = os.path.join(HERE, ".peers", "upstream")
# First on sys.path for the peers and floors: ``import a2wsgi`` fails there as if it were not
# installed (uvicorn imports it when present), so that their figures never depend on this package.
HIDE_DIR = os.path.join(HERE, ".peers", "hide-a2wsgi")
_HIDER = (
    '"""Makes a2wsgi look uninstalled in a bench process that measures a peer."""\n'
    'raise ModuleNotFoundError("a2wsgi is hidden in this bench process", name="a2wsgi")\n'
)

# A directory holding the ``a2wsgi`` package to measure as "ours" (``run.py --ours DIR``); None
# means the one this interpreter imports (the editable install of the working tree).
OURS_DIR = None
# A second built checkout measured beside ours in the same run (``run.py --before DIR``), under the
# labels ``before-compiled`` and ``before-pure``; None when not given.
BEFORE_DIR = None
BEFORE_LABELS = ("before-compiled", "before-pure")

# label -> implementation name inside the worker
LABELS = {
    "ours-compiled": "ours",
    "ours-pure": "ours",
    "ours-inline": "ours-inline",
    "upstream": "upstream",
    "uvicorn": "uvicorn",
    "asgiref": "asgiref",
    "floor": "floor",
    "hop": "hop",
    "protocol": "protocol",
    "native": "native",
    "before-compiled": "ours",
    "before-pure": "ours",
}


def upstream_installed():
    marker = os.path.join(UPSTREAM_DIR, "a2wsgi-%s.dist-info" % UPSTREAM_VERSION)
    return os.path.isdir(marker)


def ensure_peers(python=sys.executable):
    """Install a2wsgi 1.10.10 into ``bench/.peers/upstream`` if it is not there yet, and write the
    module that hides a2wsgi from the peers' processes."""
    hider = os.path.join(HIDE_DIR, "a2wsgi", "__init__.py")
    if not os.path.exists(hider):
        os.makedirs(os.path.dirname(hider), exist_ok=True)
        with open(hider, "w") as f:
            f.write(_HIDER)
    if upstream_installed():
        return UPSTREAM_DIR
    os.makedirs(UPSTREAM_DIR, exist_ok=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
                    "--target", UPSTREAM_DIR, "a2wsgi==%s" % UPSTREAM_VERSION], check=True)
    if not upstream_installed():
        raise RuntimeError("a2wsgi %s did not install into %s" % (UPSTREAM_VERSION, UPSTREAM_DIR))
    return UPSTREAM_DIR


def worker_env(label):
    """``(impl, env)`` for a process measuring ``label``."""
    impl = LABELS[label]
    env = dict(os.environ)
    env.pop("A2WSGI_PURE", None)
    env["PYTHONPATH"] = HERE
    if label in BEFORE_LABELS:
        if not BEFORE_DIR:
            raise ValueError("%s needs a directory to measure (run.py --before DIR)" % label)
        env["PYTHONPATH"] = os.pathsep.join([BEFORE_DIR, HERE])
    elif (impl.startswith("ours") or impl == "protocol") and OURS_DIR:
        env["PYTHONPATH"] = os.pathsep.join([OURS_DIR, HERE])
    if label in ("ours-pure", "before-pure"):
        env["A2WSGI_PURE"] = "1"
    elif label == "upstream":
        env["PYTHONPATH"] = os.pathsep.join([UPSTREAM_DIR, HERE])
    elif not impl.startswith("ours") and impl != "protocol":
        env["PYTHONPATH"] = os.pathsep.join([HIDE_DIR, HERE])
    env.pop("PYTHONASYNCIODEBUG", None)
    return impl, env


def load_upstream(name="a2wsgi_upstream"):
    """Import upstream a2wsgi under another module name, beside this package, in this process."""
    if name in sys.modules:
        return sys.modules[name]
    init = os.path.join(UPSTREAM_DIR, "a2wsgi", "__init__.py")
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
