"""One implementation's measuring process (started by run.py and callgrind.py, not by hand).

    _worker.py serve IMPL                 answer JSON requests, one per line, until stdin closes
    _worker.py rss IMPL WORKLOAD BYTES    peak RSS growth while streaming BYTES (VmHWM, reset to the
                                          current RSS after the warm-up), then exit
    _worker.py loop IMPL FUNC N           call one hot function N times, or (FUNC ``wa_request`` or
                                          ``aw_request``) serve N whole small echo requests one at a
                                          time in one direction (callgrind and profiler targets)

Answers go to the file descriptor that was stdout at start; stdout itself is sent to stderr, so
that apps and bridges that print cannot corrupt them. An answer is ``{"value": x, "unit": u}``,
``{"na": reason}`` or ``{"error": text}``.
"""

import asyncio
import json
import os
import sys
import traceback

import workloads

IMPLS = ("ours", "ours-inline", "upstream", "uvicorn", "asgiref", "floor", "hop", "protocol", "native")
# Whole requests that ``loop`` mode can repeat: name -> (direction, workload)
REQUEST_LOOPS = {"wa_request": "w2a", "aw_request": "a2w"}


def describe(impl):
    info = {"impl": impl, "python": sys.version.split()[0]}
    if impl in ("ours", "ours-inline", "upstream"):
        import a2wsgi
        where = os.path.dirname(os.path.abspath(a2wsgi.__file__))
        peer = os.sep + ".peers" + os.sep in where
        if peer != (impl == "upstream"):
            raise RuntimeError("%s process imported a2wsgi from %s" % (impl, where))
        info["a2wsgi"] = where
        info["version"] = getattr(a2wsgi, "__version__", None) or ".".join(map(str, a2wsgi.VERSION))
        info["speedups"] = getattr(a2wsgi, "SPEEDUPS", None)
    return info


class Runner:
    def __init__(self, impl):
        self.impl = impl
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.w2a = workloads.W2A(impl, self.loop)
        self.a2w = workloads.A2W(impl)
        self.hot = {}

    def run(self, workload, size, **extra):
        if workload.startswith("wa_") and self.impl == "ours-inline":
            raise workloads.NotAvailable("does not apply")
        if workload == "wa_echo_seq":
            return self.w2a.echo_seq(size)
        if workload == "wa_echo_c100":
            return self.w2a.echo_concurrent(size, 100)
        if workload == "wa_download":
            return self.w2a.download(size, **extra)
        if workload == "wa_download_q32":
            return self.w2a.download(size, queue=32, **extra)
        if workload == "wa_upload":
            return self.w2a.upload(size, **extra)
        if workload == "aw_echo_seq":
            if self.impl not in workloads.A2W_IMPLS:
                raise workloads.NotAvailable("does not apply")
            return self.a2w.echo_seq(size)
        if workload == "aw_echo_t8":
            if self.impl not in workloads.A2W_IMPLS:
                raise workloads.NotAvailable("does not apply")
            return self.a2w.echo_threads(size, 8)
        if workload == "aw_download":
            if self.impl not in workloads.A2W_IMPLS:
                raise workloads.NotAvailable("does not apply")
            return self.a2w.download(size, **extra)
        if workload == "aw_download_b32":
            if self.impl != "ours":
                raise workloads.NotAvailable("does not apply")
            return self.a2w.download(size, bound=32, **extra)
        if workload == "aw_upload":
            if self.impl not in workloads.A2W_IMPLS:
                raise workloads.NotAvailable("does not apply")
            return self.a2w.upload(size, **extra)
        if workload in ("build_environ", "build_scope") or workload in workloads.HEADER_FUNCTIONS:
            target = self.hot.get(workload)
            if target is None:
                target = self.hot[workload] = workloads.hot_function(self.impl, workload)
            return workloads.time_calls(target[0], target[1], size)
        raise ValueError("unknown workload %r" % workload)


def answer(run, *args, **kwargs):
    try:
        figure = run(*args, **kwargs)
        reply = {"value": figure[0], "unit": figure[1]}
        if len(figure) > 2:
            reply.update(figure[2])
        return reply
    except workloads.NotAvailable as exc:
        return {"na": str(exc)}
    except NotImplementedError as exc:
        return {"na": "not implemented" + (": %s" % exc if str(exc) else "")}
    except BaseException:  # noqa: BLE001 - every failure is reported as a figure-less answer
        return {"error": traceback.format_exc(limit=12)}


def vm_kib(field="VmHWM"):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s in /proc/self/status" % field)


def reset_hwm():
    """Reset VmHWM to the current RSS (Linux >= 4.0), so that a peak reached while importing or
    warming up cannot hide growth during the measurement. Returns the baseline in KiB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return vm_kib("VmHWM"), False
    return vm_kib("VmRSS"), True


def main(argv):
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    mode, impl = argv[0], argv[1]
    if impl not in IMPLS:
        raise SystemExit("unknown implementation %r" % impl)
    try:
        info = describe(impl)
    except Exception:  # noqa: BLE001
        info = {"impl": impl, "error": traceback.format_exc(limit=5)}
    if mode == "serve":
        runner = Runner(impl)
        out.write(json.dumps({"hello": info}) + "\n")
        out.flush()
        for line in sys.stdin:
            request = json.loads(line)
            reply = answer(runner.run, request["workload"], request["size"])
            out.write(json.dumps(reply) + "\n")
            out.flush()
    elif mode == "rss":
        workload, total = argv[2], int(argv[3])
        runner = Runner(impl)
        marks = {}

        def before():
            marks["before"], marks["reset"] = reset_hwm()

        reply = answer(runner.run, workload, total, warmup=1024 * 1024, before=before)
        if "value" in reply:
            reply["throughput"] = reply["value"]
            reply["value"] = (vm_kib("VmHWM") - marks["before"]) / 1024.0
            reply["unit"] = "MiB"
            reply["baseline_mib"] = marks["before"] / 1024.0
            reply["hwm_reset"] = marks["reset"]
        reply["hello"] = info
        out.write(json.dumps(reply) + "\n")
        out.flush()
    elif mode == "loop":
        name, n = argv[2], int(argv[3])
        if name in REQUEST_LOOPS:
            runner = Runner(impl)
            getattr(runner, REQUEST_LOOPS[name]).echo_requests(n)
            return
        func, args = workloads.hot_function(impl, name)
        for _ in range(n):
            func(*args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
