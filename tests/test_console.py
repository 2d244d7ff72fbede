"""The ``a2wsgi`` console command and the one line it prints for a pure fallback."""

import os
import subprocess
import sys

import pytest

BLOCK_SPEEDUPS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("a2wsgi._speedups."):
            raise ImportError("simulated: no compiled extension at /some/absolute/path.so", name=name)
sys.meta_path.insert(0, Block())
sys.argv = ["a2wsgi", "info"]
from a2wsgi.__main__ import main
sys.exit(main())
"""


@pytest.mark.cpython_only
def test_pure_fallback_is_one_line_with_the_fix_and_no_path():
    env = {k: v for k, v in os.environ.items() if k != "A2WSGI_PURE"}
    out = subprocess.run([sys.executable, "-c", BLOCK_SPEEDUPS], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stderr == ""
    lines = [line for line in out.stdout.splitlines() if line.startswith("implementation: ")]
    assert len(lines) == 1, out.stdout
    reason = lines[0]
    assert reason.startswith("implementation: pure, because ")
    assert "/some/absolute/path" not in out.stdout and "Traceback" not in out.stdout
    assert "build_ext --inplace" in reason or "pip install a2wsgi" in reason
    assert "a2wsgi.SPEEDUPS = False" in out.stdout


def test_console_script_is_declared():
    tomllib = pytest.importorskip("tomllib")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {"a2wsgi": "a2wsgi.__main__:main"}
