"""README's demo command, run as written from a copy of the checkout: a venv, ``pip install .``,
then the ``a2wsgi`` console command; the demo page must report the compiled build. Slow (it builds
the extension once): runs in the first pass of tests/run.py only."""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from servers import free_port, running

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PURE_ONLY_PASS = os.environ.get("A2WSGI_PURE", "").strip().lower() not in ("", "0", "false", "no")


def _demo_command():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## The two commands", 1)[1]
    return re.search(r"```sh\n(.*?)\n```", section, re.S).group(1).strip()


def _copy_checkout(dest):
    ignore = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "__pycache__", "*.so", "*.pyd", "*.c",
                                    "*.egg-info", ".pytest_cache", ".hypothesis", "results")
    shutil.copytree(ROOT, dest, ignore=ignore)


@pytest.mark.skipif(PURE_ONLY_PASS, reason="ran in the first pass (the demo must show the compiled build)")
@pytest.mark.skipif(sys.platform == "win32", reason="README's command is for a POSIX shell")
def test_readme_demo_command_runs_the_compiled_build(tmp_path):
    if not os.path.exists(os.path.join(ROOT, "setup.py")):
        pytest.skip("needs the checkout (this is a copy of tests/ only)")
    command = _demo_command()
    steps = command.split(" && ")
    assert steps[-1] == ".venv/bin/a2wsgi serve", command
    checkout = str(tmp_path / "checkout")
    _copy_checkout(checkout)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "A2WSGI_PURE", "VIRTUAL_ENV", "PYTHONHOME")}
    setup = " && ".join(steps[:-1])
    subprocess.run(setup, shell=True, cwd=checkout, env=env, check=True, timeout=900,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    argv = shlex.split(steps[-1]) + ["--port", str(port)]
    argv[0] = os.path.join(checkout, argv[0])
    with running(argv, port, env={"PYTHONPATH": ""}, cwd=checkout):
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=60) as resp:
            page = resp.read().decode()
    assert "a2wsgi.SPEEDUPS = True" in page and "implementation: compiled" in page, page
    info = subprocess.run([os.path.join(checkout, ".venv/bin/a2wsgi"), "info"], cwd=checkout, env=env,
                          capture_output=True, text=True, check=True).stdout
    assert "implementation: compiled" in info, info
