"""Where a whole small request's time goes, in microseconds per request, by sampling.

    python bench/hotspots.py [--requests 20000] [--rate 2000] [--impl LABEL ...] [--top 25]
                             [--direction wa aw] [--ours DIR] [--json PATH]

Runs ``_worker.py loop IMPL wa_request|aw_request N`` (N sequential small POST echoes in one
process, the same request as the bench's sequential echo rows) under py-spy (``pip install
py-spy``), for each label (default: ours-compiled and the bare hop), and prints for each function the
samples it was running (self) and the samples it was on the stack (total), as CPU microseconds per
request summed over every thread, with the hop's figure beside ours. py-spy drops samples of the thread
holding the GIL by default: Python work, without the system calls and waits that release the GIL.
``--all-threads`` keeps every thread that py-spy does not see idle; it does not see a thread idle in
a timed ``SimpleQueue.get`` or in ``epoll``, so those waits count there as time. Only samples inside the request loop (``echo_requests``) or a thread started
for the requests (``Thread._bootstrap``) count: start-up and imports are left out.
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

import peers

HERE = os.path.dirname(os.path.abspath(__file__))


def py_spy(python=sys.executable):
    """The py-spy program: on PATH, or beside the interpreter (a virtualenv's bin)."""
    beside = os.path.join(os.path.dirname(python), "py-spy")
    return shutil.which("py-spy") or (beside if os.access(beside, os.X_OK) else None)


def sample(label, func, requests, rate, python, gil=False):
    """``(self, total, samples)``: Counters of samples per function key, and the sample count."""
    impl, env = peers.worker_env(label)
    with tempfile.TemporaryDirectory(prefix="a2wsgi-spy-") as tmp:
        out = os.path.join(tmp, "stacks.txt")
        argv = [py_spy(python), "record", "--rate", str(rate), "--format", "raw", "--nonblocking", "-o", out] + (["--gil"] if gil else []) + ["--",
                python, os.path.join(HERE, "_worker.py"), "loop", impl, func, str(requests)]
        proc = subprocess.run(argv, env=env, cwd=HERE, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0 or not os.path.exists(out):
            raise RuntimeError("py-spy failed (exit %d):\n%s" % (proc.returncode, proc.stderr[-2000:]))
        with open(out) as f:
            lines = f.read().splitlines()
    own, total = collections.Counter(), collections.Counter()
    count = 0
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        n = int(n)
        frames = [_key(frame) for frame in stack.split(";")]  # outermost first
        if not any(frame.split(" (")[0].rpartition(".")[2] in ("echo_requests", "_bootstrap") for frame in frames):
            continue
        count += n
        if frames:
            own[frames[-1]] += n
        for key in set(frames):
            total[key] += n
    return own, total, count


def _key(frame):
    """``function (file)`` of py-spy's ``function (path:line)`` frame, without the line."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    parts = path.split(os.sep)
    short = os.sep.join(parts[-2:]) if parts[-2:-1] in (["a2wsgi"], ["asyncio"], ["_speedups"], ["bench"]) \
        else parts[-1]
    return "%s (%s)" % (name, short)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rate", type=int, default=2000, help="samples per second (default 2000)")
    parser.add_argument("--impl", nargs="+", default=["ours-compiled", "hop"], choices=sorted(peers.LABELS))
    parser.add_argument("--direction", nargs="+", default=["wa", "aw"], choices=["wa", "aw"])
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--all-threads", dest="gil", action="store_false",
                        help="every thread py-spy sees busy, not only the one holding the GIL")
    parser.add_argument("--ours", metavar="DIR", help="measure the a2wsgi package in DIR as ours")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    if args.ours:
        peers.OURS_DIR = os.path.abspath(args.ours)
    if not py_spy(args.python):
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    per_request = 1e6 / args.rate / args.requests
    saved = {}
    for direction in args.direction:
        func = direction + "_request"
        runs = {}
        for label in args.impl:
            own, total, count = sample(label, func, args.requests, args.rate, args.python, args.gil)
            runs[label] = (own, total)
            saved["%s/%s" % (func, label)] = {"gil": args.gil, "samples": count, "us_per_request": count * per_request,
                                              "self": dict(own), "total": dict(total)}
            print("\n%s %s: %d samples, %.1f µs per request %s" % (
                func, label, count, count * per_request, "holding the GIL" if args.gil else "(all busy threads)"))
        first = args.impl[0]
        others = args.impl[1:]
        for kind, index in (("self", 0), ("total", 1)):
            print("\n%s, top %d by %s time of %s (CPU µs per request)" % (func, args.top, kind, first))
            print("%8s %s  function" % (first[:8], " ".join("%8s" % x[:8] for x in others)))
            for key, n in runs[first][index].most_common(args.top):
                print("%8.2f %s  %s" % (n * per_request, " ".join(
                    "%8.2f" % (runs[x][index].get(key, 0) * per_request) for x in others), key))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"requests": args.requests, "rate": args.rate, "runs": saved}, out, indent=1)


if __name__ == "__main__":
    main()
