"""Check that an sdist can rebuild the project on its own.

Usage: python .ci/check_sdist.py dist/a2wsgi-X.tar.gz

It must carry every git-tracked file of the package and of tests/ (cibuildwheel copies the
tests out of the sdist), the build files, and the Cython sources, and it must carry nothing
generated: no .c from Cython, no compiled module, no build/ directory. Exits non-zero with the
list of problems otherwise.
"""

import os
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATED_SUFFIXES = (".c", ".so", ".pyd", ".dylib", ".pyc", ".pyo", ".html")
REQUIRED = ("pyproject.toml", "setup.py", "README.md", "a2wsgi/py.typed", "tests/run.py",
            "tests/conftest.py")


def tracked(*pathspecs):
    out = subprocess.run(["git", "ls-files", "--", *pathspecs], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def main(path):
    with tarfile.open(path) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    tops = {name.split("/", 1)[0] for name in names}
    if len(tops) != 1:
        print("error: expected one top-level directory, found %s" % sorted(tops))
        return 1
    top = tops.pop()
    inside = sorted(name[len(top) + 1:] for name in names)
    present = set(inside)
    problems = []

    pyx = [name for name in inside if name.startswith("a2wsgi/_speedups/") and name.endswith(".pyx")]
    tracked_pyx = tracked("a2wsgi/_speedups/*.pyx")
    if not tracked_pyx:
        problems.append("git tracks no a2wsgi/_speedups/*.pyx: nothing to compile?")
    for name in tracked_pyx:
        if name not in present:
            problems.append("missing Cython source %s" % name)

    wanted = [name for name in tracked("a2wsgi", "tests")
              if name.endswith((".py", ".pyx", ".pxd", ".typed"))]
    wanted += list(REQUIRED)
    for name in sorted(set(wanted)):
        if name not in present:
            problems.append("missing %s" % name)

    for name in inside:
        if name.endswith(GENERATED_SUFFIXES):
            problems.append("generated file shipped: %s" % name)
        if name.startswith("build/") or "/__pycache__/" in "/" + name:
            problems.append("build output shipped: %s" % name)

    print("%s: %d files, %d .pyx (%s)" % (os.path.basename(path), len(inside), len(pyx),
                                         ", ".join(os.path.basename(p) for p in pyx)))
    for problem in problems:
        print("error: " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
