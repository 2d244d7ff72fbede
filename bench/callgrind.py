"""Instructions per call of the hot paths, counted by valgrind's callgrind (repeatable, unlike time).

    python bench/callgrind.py [--calls N] [--json PATH]

Each (implementation, function) is run twice under ``valgrind --tool=callgrind`` with
``PYTHONHASHSEED=0``: a loop of ``base`` calls and a loop of ``base + N`` calls, in the same
single-threaded process shape, with byte-code already compiled and not written. The difference of
the two totals divided by ``N`` is the cost of one call, with interpreter start-up and imports
cancelled out; the totals repeat to the instruction from run to run.

``wa_request`` and ``aw_request`` are one whole small POST echo in each direction (in process, the
same request as the bench's sequential echo rows), for ours and for the bare hop (``hop``): what a
change to the middlewares costs or saves on a whole request, and how much of it is beyond the hop.
They run two threads (the loop's and a worker), which valgrind serialises; their counts repeat to
within a small fraction of a percent rather than to the instruction, and use a tenth of the calls.
``aw_request`` is also counted for ``ours-inline`` (``inline=True``: one thread, no hop), and
``wa_request`` for ``protocol`` (the hop plus the protocol work every W->A bridge does; see
workloads.py).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import peers

HERE = os.path.dirname(os.path.abspath(__file__))
FUNCS = ("build_environ", "build_scope", "translate_request_headers", "build_headers", "encode_response_headers",
         "decode_response_headers", "parse_status", "status_line")
IMPLS = ("ours-compiled", "ours-pure", "upstream")
# Whole requests, in process (``_worker.py loop IMPL wa_request N``), and who is counted for them.
REQUESTS = ("wa_request", "aw_request")
REQUEST_IMPLS = ("ours-compiled", "ours-pure", "hop")
# Counted for one direction only: inline mode exists for A->W alone.
DIRECTION_IMPLS = {"aw_request": ("ours-inline",), "wa_request": ("protocol",)}
_COLLECTED = re.compile(rb"Collected\s*:\s*(\d+)")


def available():
    return shutil.which("valgrind") is not None


def _count(label, func, calls, python, outdir):
    impl, env = peers.worker_env(label)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + os.path.join(outdir, "cg.%p"),
            python, os.path.join(HERE, "_worker.py"), "loop", impl, func, str(calls)]
    proc = subprocess.run(argv, env=env, cwd=HERE, capture_output=True, timeout=900)
    found = _COLLECTED.findall(proc.stderr)
    if b"workloads.NotAvailable" in proc.stderr:
        return None
    if proc.returncode != 0 or not found:
        tail = proc.stderr.decode("utf-8", "replace")[-1500:]
        raise RuntimeError("callgrind run of %s %s failed (exit %d):\n%s" % (label, func, proc.returncode, tail))
    return int(found[-1])


def measure(calls=2000, base=200, impls=IMPLS, funcs=FUNCS + REQUESTS, python=sys.executable, log=print,
            request_impls=REQUEST_IMPLS):
    """``{func: {label: instructions per call or None}}``; whole requests are counted over a tenth of
    ``calls`` (and of ``base``), for ``request_impls``."""
    results = {}
    extra = tuple(label for func in funcs for label in DIRECTION_IMPLS.get(func, ()))
    wanted = tuple(impls) + tuple(request_impls) + extra
    for label in sorted(set(wanted), key=wanted.index):
        # Byte-compile what the counted runs import, so that neither of them pays for it.
        impl, env = peers.worker_env(label)
        subprocess.run([python, os.path.join(HERE, "_worker.py"), "loop", impl, funcs[0], "1"], env=env, cwd=HERE,
                       capture_output=True, timeout=300)
    with tempfile.TemporaryDirectory(prefix="a2wsgi-cg-") as outdir:
        for func in funcs:
            row = results[func] = {}
            whole = func in REQUESTS
            n, start = (max(20, calls // 10), max(10, base // 10)) if whole else (calls, base)
            labels = tuple(request_impls) + DIRECTION_IMPLS.get(func, ()) if whole else impls
            for label in labels:
                small = _count(label, func, start, python, outdir)
                if small is None:
                    row[label] = None
                    continue
                big = _count(label, func, start + n, python, outdir)
                row[label] = (big - small) / n
                log("callgrind %-26s %-14s %10.0f instructions/call" % (func, label, row[label]))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--only", nargs="+", metavar="FUNC", choices=FUNCS + REQUESTS, default=None,
                        help="count only these (default: every hot function and both whole requests)")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--ours", metavar="DIR", help="measure the a2wsgi package in DIR as ours")
    parser.add_argument("--before", metavar="DIR",
                        help="also count whole requests for the a2wsgi package in DIR (an earlier built checkout) "
                             "as before-compiled and before-pure")
    args = parser.parse_args()
    if args.ours:
        peers.OURS_DIR = os.path.abspath(args.ours)
    request_impls = REQUEST_IMPLS
    if args.before:
        peers.BEFORE_DIR = os.path.abspath(args.before)
        request_impls += peers.BEFORE_LABELS
    if not available():
        raise SystemExit("valgrind is not installed")
    peers.ensure_peers(sys.executable)
    results = measure(calls=args.calls, funcs=tuple(args.only or FUNCS + REQUESTS), request_impls=request_impls)
    for func, row in results.items():
        print("%-26s %s" % (func, "  ".join("%s %s" % (label, "—" if v is None else "%.0f" % v)
                                            for label, v in row.items())))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
