"""Compare two ``bench/run.py --json`` files: the median of every figure in both, and the change.

    python bench/compare.py OLD.json NEW.json [--impl LABEL ...] [--threshold 0.10]

A change is marked ``better`` or ``worse`` when it exceeds the threshold (default 10 %) in the
figure's good direction; wall-time figures on a shared machine move by that much on their own, so
look for changes that repeat across runs, or at the instruction counts, which do not move.
"""

import argparse
import json
import sys

LOWER_IS_BETTER = ("us/req", "us/call", "MiB", "Ir/call")


def figures(data, labels):
    out = {}
    for workload, row in data["results"].items():
        for label, cell in row.items():
            if labels and label not in labels:
                continue
            if cell.get("median") is not None:
                out[(workload, label)] = (cell["median"], cell.get("unit"))
    for func, row in (data.get("callgrind") or {}).items():
        for label, value in row.items():
            if value is not None and (not labels or label in labels):
                out[("callgrind " + func, label)] = (value, "Ir/call")
    return out


def _num(value):
    return "%.2f" % value if abs(value) < 10 else ("%.1f" % value if abs(value) < 100 else "%.0f" % value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--impl", nargs="+", default=None, metavar="LABEL")
    parser.add_argument("--threshold", type=float, default=0.10)
    args = parser.parse_args(argv)
    with open(args.old) as f:
        old = json.load(f)
    with open(args.new) as f:
        new = json.load(f)
    a, b = figures(old, args.impl), figures(new, args.impl)
    print("old: %s, commit %s\nnew: %s, commit %s\n" % (old["meta"]["date"], old["meta"].get("commit"),
                                                       new["meta"]["date"], new["meta"].get("commit")))
    print("| workload | implementation | unit | old | new | change | |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted(set(a) & set(b)):
        (va, unit), (vb, _) = a[key], b[key]
        if not va:
            continue
        change = vb / va - 1.0
        good = -change if unit in LOWER_IS_BETTER else change
        verdict = "better" if good > args.threshold else ("worse" if good < -args.threshold else "")
        print("| %s | %s | %s | %s | %s | %+.1f%% | %s |" % (key[0], key[1], unit, _num(va), _num(vb), change * 100,
                                                          verdict))
    for key in sorted(set(a) ^ set(b)):
        print("| %s | %s | | %s | %s | | only in one |" % (key[0], key[1], "yes" if key in a else "—",
                                                          "yes" if key in b else "—"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
