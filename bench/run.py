"""Compare a2wsgi (compiled, pure, and A->W inline mode) with upstream a2wsgi 1.10.10, uvicorn's and
asgiref's bridges and the floors, in one run.

    python bench/run.py [--quick] [--json PATH] [--only WORKLOAD_OR_GROUP ...] [--impl LABEL ...]
                        [--repeats N] [--callgrind] [--loadgen {wrk,python}]

Each implementation is measured in its own long-lived worker process (``_worker.py``), and the
implementations take turns on every workload (A B C A B C ...), the order rotating each repeat,
so that the noise of a shared machine falls on all of them alike. Figures are medians over the
repeats. Two floors sit beside the bridges: ``floor`` (one round trip through the standard library's
futures) and ``hop`` (the bare hop: a SimpleQueue and a plain worker thread W->A, a
call_soon_threadsafe submit and a one-shot lock A->W, running the same echo app; see workloads.py),
and, W->A, ``protocol``: the hop plus the protocol work every W->A bridge does (environ, status and
headers, ASGI messages), without a bridge's own machinery.
Peak RSS is measured in a fresh process per figure. The real-server workloads start
uvicorn or gunicorn on 127.0.0.1 per figure, load them with wrk (or ``loadgen.py``) from a
separate process, and stop them by pid.

Exit status: 0 when ours answered every request correctly (a figure may be "n/a (not
implemented)"), 1 when ours errored or hung. A peer that errors (asgiref's WsgiToAsgi does under
concurrent load on uvicorn) is reported in the table and under "Errors"; ``--strict`` makes that fail
the run too.
"""

import argparse
import contextlib
import datetime
import http.client
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import apps  # noqa: E402
import peers  # noqa: E402

MiB = apps.MiB
W2A_LABELS = ("ours-compiled", "ours-pure", "upstream", "uvicorn", "asgiref", "floor", "hop", "protocol", "native")
A2W_LABELS = ("ours-compiled", "ours-pure", "ours-inline", "upstream", "floor", "hop", "native")
# Every label, in the order of the tables' columns.
ALL_LABELS = ("ours-compiled", "ours-pure", "ours-inline", "upstream", "uvicorn", "asgiref", "floor", "hop",
              "protocol", "native", "before-compiled", "before-pure")
REF = "ours-compiled"


class Workload:
    def __init__(self, key, group, title, labels, full, quick, better):
        self.key, self.group, self.labels = key, group, labels
        self.full, self.quick, self.better = full, quick, better
        self.title = title.replace("{size}", _size_text(full))
        self.quick_title = title.replace("{size}", _size_text(quick))


def _size_text(size):
    if not isinstance(size, int) or size < MiB:
        return ""
    return "%d GiB" % (size // (1024 * MiB)) if size % (1024 * MiB) == 0 else "%d MiB" % (size // MiB)


IN_PROCESS = [
    Workload("wa_echo_seq", "wa", "W→A small POST echo, sequential", W2A_LABELS, 3000, 400, "lower"),
    Workload("wa_echo_c100", "wa", "W→A small POST echo, 100 concurrent", W2A_LABELS, 6000, 1000, "higher"),
    Workload("wa_download", "wa", "W→A {size} download, 64 KiB chunks",
             ("ours-compiled", "ours-pure", "upstream", "uvicorn", "asgiref", "native"),
             100 * MiB, 32 * MiB, "higher"),
    Workload("wa_download_q32", "wa", "W→A {size} download, 64 KiB chunks, send_queue_size=32",
             ("ours-compiled", "ours-pure", "upstream", "uvicorn"), 100 * MiB, 32 * MiB, "higher"),
    Workload("wa_upload", "wa", "W→A {size} upload, 64 KiB chunks",
             ("ours-compiled", "ours-pure", "upstream", "uvicorn", "asgiref", "native"),
             100 * MiB, 32 * MiB, "higher"),
    Workload("aw_echo_seq", "aw", "A→W small POST echo, sequential", A2W_LABELS, 3000, 400, "lower"),
    Workload("aw_echo_t8", "aw", "A→W small POST echo, 8 threads", tuple(x for x in A2W_LABELS if x != "ours-inline"),
             6000, 1000, "higher"),
    Workload("aw_download", "aw", "A→W {size} download, 64 KiB chunks", ("ours-compiled", "ours-pure", "ours-inline",
             "upstream", "native"), 100 * MiB, 32 * MiB, "higher"),
    Workload("aw_download_b32", "aw", "A→W {size} download, 64 KiB chunks, 32 chunks / 2 MiB ahead",
             ("ours-compiled", "ours-pure"), 100 * MiB, 32 * MiB, "higher"),
    Workload("aw_upload", "aw", "A→W {size} upload, 64 KiB chunks", ("ours-compiled", "ours-pure", "ours-inline",
             "upstream", "native"), 100 * MiB, 32 * MiB, "higher"),
    Workload("build_environ", "hot", "build_environ, 20 headers", ("ours-compiled", "ours-pure", "upstream",
             "uvicorn"), 20000, 3000, "lower"),
    Workload("build_scope", "hot", "build_scope, 20 headers", ("ours-compiled", "ours-pure", "upstream"),
             20000, 3000, "lower"),
    Workload("translate_request_headers", "hot", "translate_request_headers: 20 ASGI headers → environ keys",
             ("ours-compiled", "ours-pure"), 20000, 3000, "lower"),
    Workload("build_headers", "hot", "build_headers: environ with 20 headers → ASGI headers",
             ("ours-compiled", "ours-pure"), 20000, 3000, "lower"),
    Workload("encode_response_headers", "hot", "encode_response_headers: 6 WSGI headers → bytes pairs",
             ("ours-compiled", "ours-pure"), 50000, 5000, "lower"),
    Workload("decode_response_headers", "hot", "decode_response_headers: 6 ASGI headers → str pairs",
             ("ours-compiled", "ours-pure"), 50000, 5000, "lower"),
    Workload("parse_status", "hot", "parse_status: \"200 OK\"", ("ours-compiled", "ours-pure"), 200000, 20000,
             "lower"),
    Workload("status_line", "hot", "status_line: 404", ("ours-compiled", "ours-pure"), 200000, 20000, "lower"),
]
RSS_LABELS_W2A = ("ours-compiled", "ours-pure", "upstream", "uvicorn", "asgiref")
RSS_LABELS_A2W = ("ours-compiled", "ours-pure", "upstream")
RSS = [
    Workload("rss_wa_download", "rss", "W→A peak RSS growth, {size} download", RSS_LABELS_W2A, 1024 * MiB,
             128 * MiB, "lower"),
    Workload("rss_wa_upload", "rss", "W→A peak RSS growth, {size} upload", RSS_LABELS_W2A, 1024 * MiB,
             128 * MiB, "lower"),
    Workload("rss_aw_download", "rss", "A→W peak RSS growth, {size} download", RSS_LABELS_A2W, 1024 * MiB,
             128 * MiB, "lower"),
    Workload("rss_aw_upload", "rss", "A→W peak RSS growth, {size} upload", RSS_LABELS_A2W, 1024 * MiB,
             128 * MiB, "lower"),
]
SERVERS = [
    Workload("srv_uvicorn", "servers", "uvicorn (h11, asyncio), WSGI hello world through each W→A bridge",
             ("ours-compiled", "ours-pure", "upstream", "uvicorn", "asgiref", "native"), 5.0, 1.0, "higher"),
    Workload("srv_gunicorn", "servers", "gunicorn gthread (1 worker, 8 threads), ASGI hello world through "
             "each A→W bridge", ("ours-compiled", "ours-pure", "upstream", "native"), 5.0, 1.0, "higher"),
    # A sync worker serves one connection at a time and closes it after each response: loaded by one
    # connection (16 of them only queue in the backlog, and wrk's reconnects then dominate: native fell
    # from about 2100 req/s with one connection to about 500 with 16).
    Workload("srv_gunicorn_sync", "servers", "gunicorn sync (1 worker), one connection, ASGI hello world "
             "through each A→W bridge",
             ("ours-compiled", "ours-pure", "ours-inline", "upstream", "native"), 5.0, 1.0, "higher"),
]
ALL = IN_PROCESS + RSS + SERVERS
GROUPS = sorted({w.group for w in ALL})
UNIT_TEXT = {"us/req": "µs/req", "us/call": "µs/call", "req/s": "req/s", "MiB/s": "MiB/s", "MiB": "MiB",
             "Ir/call": "instr/call"}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- worker processes

class Worker:
    """A long-lived ``_worker.py serve`` process for one label."""

    def __init__(self, label, python, logdir):
        self.label, self.python, self.logdir = label, python, logdir
        self.proc = None
        self.hello = None
        self.start()

    def start(self):
        impl, env = peers.worker_env(self.label)
        self.log_path = os.path.join(self.logdir, "worker-%s.log" % self.label)
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.python, os.path.join(HERE, "_worker.py"), "serve", impl],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_file,
                                     env=env, cwd=HERE, start_new_session=True)

    def read_line(self, timeout):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"error": "worker exited (code %s)\n%s" % (self.proc.wait(),
                                                                                         self.tail())}

    def ensure_hello(self, timeout=60):
        if self.hello is None:
            reply = self.read_line(timeout)
            if reply is None or "hello" not in reply:
                self.hello = {"error": "worker did not start: %r\n%s" % (reply, self.tail())}
            else:
                self.hello = reply["hello"]
        return self.hello

    def ask(self, workload, size, timeout):
        self.ensure_hello()
        try:
            self.proc.stdin.write((json.dumps({"workload": workload, "size": size}) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            reply = {"error": "worker is gone\n" + self.tail()}
            self.restart()
            return reply
        reply = self.read_line(timeout)
        if reply is None:
            reply = {"error": "no answer within %.0f s (hung?)\n%s" % (timeout, self.tail())}
            self.restart()
        elif "error" in reply and self.proc.poll() is not None:
            self.restart()
        return reply

    def tail(self, size=3000):
        self.log_file.flush()
        with open(self.log_path, "rb") as f:
            return f.read()[-size:].decode("utf-8", "replace")

    def restart(self):
        self.stop()
        self.hello = None
        self.start()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_file.close()
        self.proc = None


# ---------------------------------------------------------------- results

class Results:
    def __init__(self):
        self.cells = {}

    def cell(self, workload, label):
        return self.cells.setdefault(workload, {}).setdefault(label, {"values": []})

    def add(self, workload, label, reply):
        cell = self.cell(workload, label)
        if "value" in reply:
            cell["values"].append(reply["value"])
            cell["unit"] = reply["unit"]
            for key, value in reply.items():
                if key not in ("value", "unit", "hello"):
                    cell.setdefault(key, []).append(value)
        elif "na" in reply:
            cell["na"] = reply["na"]
        else:
            cell.setdefault("errors", []).append(reply.get("error", "unknown error"))

    def skip(self, workload, label):
        cell = self.cells.get(workload, {}).get(label)
        return cell is not None and ("na" in cell or cell.get("errors"))

    def median(self, workload, label):
        cell = self.cells.get(workload, {}).get(label)
        if not cell or not cell["values"] or cell.get("errors"):
            return None
        return statistics.median(cell["values"])

    def finish(self):
        for row in self.cells.values():
            for cell in row.values():
                if cell["values"]:
                    cell["median"] = statistics.median(cell["values"])
                    cell["min"] = min(cell["values"])
                    cell["max"] = max(cell["values"])

    def errors(self):
        return [(w, label, cell["errors"]) for w, row in self.cells.items() for label, cell in row.items()
                if cell.get("errors")]


def interleaved(labels, repeat):
    shift = repeat % len(labels)
    return list(labels[shift:]) + list(labels[:shift])


def run_in_process(workloads, labels, repeats, quick, python, logdir, results, timeout):
    needed = [label for label in labels if any(label in w.labels for w in workloads)]
    workers = {label: Worker(label, python, logdir) for label in needed}
    try:
        for label, worker in workers.items():
            hello = worker.ensure_hello()
            log("worker %-14s %s" % (label, json.dumps(hello)))
            if "error" in hello:
                for w in workloads:
                    if label in w.labels:
                        results.add(w.key, label, {"error": hello["error"]})
        for repeat in range(repeats):
            for w in workloads:
                size = w.quick if quick else w.full
                for label in interleaved([x for x in w.labels if x in workers], repeat):
                    if results.skip(w.key, label):
                        continue
                    reply = workers[label].ask(w.key, size, timeout)
                    results.add(w.key, label, reply)
                    log("[%d/%d] %-26s %-14s %s" % (repeat + 1, repeats, w.key, label, _short(reply)))
        return {label: worker.hello for label, worker in workers.items()}
    finally:
        for worker in workers.values():
            worker.stop()


def _short(reply):
    if "value" in reply:
        return "%.2f %s" % (reply["value"], reply["unit"])
    if "na" in reply:
        return "n/a (%s)" % reply["na"]
    return "ERROR " + reply.get("error", "").strip().splitlines()[-1][:200]


def run_rss(workloads, labels, repeats, quick, python, results, timeout):
    for repeat in range(repeats):
        for w in workloads:
            size = w.quick if quick else w.full
            for label in interleaved([x for x in w.labels if x in labels], repeat):
                if results.skip(w.key, label):
                    continue
                impl, env = peers.worker_env(label)
                inner = w.key.replace("rss_", "")
                try:
                    proc = subprocess.run([python, os.path.join(HERE, "_worker.py"), "rss", impl, inner, str(size)],
                                          env=env, cwd=HERE, capture_output=True, timeout=timeout)
                    lines = proc.stdout.decode().strip().splitlines()
                    reply = json.loads(lines[-1]) if lines else {
                        "error": "exit %d\n%s" % (proc.returncode, proc.stderr.decode("utf-8", "replace")[-2000:])}
                except subprocess.TimeoutExpired:
                    reply = {"error": "no answer within %.0f s (hung?)" % timeout}
                reply.pop("hello", None)
                results.add(w.key, label, reply)
                log("[%d/%d] %-26s %-14s %s" % (repeat + 1, repeats, w.key, label, _short(reply)))


# ---------------------------------------------------------------- real servers

def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited early with code %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("server did not listen on 127.0.0.1:%d within %.0f s" % (port, timeout))


def _stop_server(proc):
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def server_argv(kind, python, port):
    if kind == "srv_uvicorn":
        return [python, "-m", "uvicorn", "_server_apps:app", "--host", "127.0.0.1", "--port", str(port),
                "--interface", "asgi3", "--http", "h11", "--loop", "asyncio", "--lifespan", "auto",
                "--log-level", "warning", "--no-access-log"]
    if kind == "srv_gunicorn_sync":
        return [python, "-m", "gunicorn", "--worker-class", "sync", "--workers", "1",
                "--bind", "127.0.0.1:%d" % port, "--log-level", "warning", "_server_apps:app"]
    return [python, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "1", "--threads", "8",
            "--bind", "127.0.0.1:%d" % port, "--log-level", "warning", "_server_apps:app"]


def _check_hello(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200 or body != apps.HELLO:
        raise RuntimeError("GET / answered %d %r" % (response.status, body[:80]))


_WRK_RPS = re.compile(r"Requests/sec:\s*([\d.]+)")
_WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s*(\d+)")
_WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(\w+)")


def load(port, duration, connections, loadgen, python):
    url = "http://127.0.0.1:%d/" % port
    if loadgen == "wrk":
        out = subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % max(1, round(duration)), url],
                             capture_output=True, text=True, timeout=duration + 60).stdout
        rps = _WRK_RPS.search(out)
        if not rps:
            raise RuntimeError("could not read wrk's output:\n" + out)
        non2xx = _WRK_NON2XX.search(out)
        sock = _WRK_SOCKET.search(out)
        total = _WRK_TOTAL.search(out)
        return {"rps": float(rps.group(1)), "non2xx": int(non2xx.group(1)) if non2xx else 0,
                "socket_errors": sum(map(int, sock.groups())) if sock else 0,
                "requests": int(total.group(1)) if total else None}
    out = subprocess.run([python, os.path.join(HERE, "loadgen.py"), url, "--connections", str(connections),
                          "--duration", str(duration)], capture_output=True, text=True, timeout=duration + 60)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rps": data["rps"], "non2xx": data["non2xx"], "socket_errors": data["errors"],
            "requests": data["requests"]}


def run_servers(workloads, labels, repeats, quick, python, logdir, results, loadgen, connections):
    for repeat in range(repeats):
        for w in workloads:
            duration = w.quick if quick else w.full
            direction = "wa" if w.key == "srv_uvicorn" else "aw"
            for label in interleaved([x for x in w.labels if x in labels], repeat):
                if results.skip(w.key, label):
                    continue
                impl, env = peers.worker_env(label)
                env["A2WSGI_BENCH_APP"] = "%s:%s" % (direction, impl)
                port = free_port()
                log_path = os.path.join(logdir, "%s-%s.log" % (w.key, label))
                with open(log_path, "ab") as server_log:
                    proc = subprocess.Popen(server_argv(w.key, python, port), env=env, cwd=HERE,
                                            stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True)
                try:
                    _wait_for_port(port, proc)
                    _check_hello(port)
                    conns = 1 if w.key == "srv_gunicorn_sync" else connections
                    load(port, 0.5 if quick else 1.0, conns, "python" if loadgen == "python" else loadgen, python)
                    got = load(port, duration, conns, loadgen, python)
                    if got["non2xx"]:
                        with open(log_path, "rb") as f:
                            causes = [x for x in f.read()[-20000:].decode("utf-8", "replace").splitlines()
                                      if "Error" in x]
                        reply = {"error": "%d of %s responses were not 2xx; the server logged: %s" % (
                            got["non2xx"], got["requests"], causes[-1].strip() if causes else "nothing")}
                    else:
                        _check_hello(port)
                        reply = {"value": got["rps"], "unit": "req/s", "socket_errors": got["socket_errors"]}
                except Exception as exc:  # noqa: BLE001 - a failing server is a figure-less answer
                    with open(log_path, "rb") as f:
                        tail = f.read()[-2000:].decode("utf-8", "replace")
                    text = "%s: %s\n%s" % (type(exc).__name__, exc, tail)
                    missing = "NotImplementedError" in tail or "NotAvailable: not implemented" in tail
                    no_server = "No module named %s" % ("uvicorn" if direction == "wa" else "gunicorn")
                    if missing:
                        reply = {"na": "not implemented"}
                    elif no_server in tail:
                        reply = {"na": "%s not installed" % no_server.split()[-1]}
                    else:
                        reply = {"error": text}
                finally:
                    _stop_server(proc)
                results.add(w.key, label, reply)
                log("[%d/%d] %-26s %-14s %s" % (repeat + 1, repeats, w.key, label, _short(reply)))


# ---------------------------------------------------------------- report

def fmt_value(value, unit):
    if unit in ("us/req", "us/call"):
        return "%.1f" % value if value >= 10 else ("%.2f" % value if value >= 0.1 else "%.3f" % value)
    if unit == "Ir/call":
        return "%.0f" % value
    if unit == "MiB":
        return "%.1f" % value
    return "%.0f" % value if value >= 100 else "%.1f" % value


def cell_text(results, key, label, ref_label=REF):
    cell = results.cells.get(key, {}).get(label)
    if cell is None:
        return "—"
    if cell.get("errors"):
        return "**error**"
    if "na" in cell:
        return "n/a (%s)" % cell["na"] if cell["na"] != "does not apply" else "—"
    if not cell["values"]:
        return "—"
    value = statistics.median(cell["values"])
    text = fmt_value(value, cell["unit"])
    ref = results.median(key, ref_label)
    if ref and label != ref_label and not key.startswith("rss_"):
        text += " (%.2f×)" % (value / ref)
    return text


def table(results, workloads, labels, title, quick=False):
    workloads = [w for w in workloads if w.key in results.cells]
    cols = [label for label in labels if any(label in results.cells[w.key] for w in workloads)]
    if not workloads or not cols:
        return None
    lines = ["**%s**" % title, "", "| workload | unit | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for w in workloads:
        unit = _unit_of(w)
        unit_text = UNIT_TEXT.get(unit, unit or "") + (" ↓" if w.better == "lower" else " ↑")
        row = [cell_text(results, w.key, label) if label in w.labels else "—" for label in cols]
        lines.append("| %s | %s | %s |" % (w.quick_title if quick else w.title, unit_text, " | ".join(row)))
        hop = results.median(w.key, "hop")
        if hop and w.key.endswith("_seq"):
            lines.append("| ↳ ÷ the bare hop | × ↓ | %s |" % " | ".join(
                "%.2f×" % (results.median(w.key, label) / hop) if label != "hop" and results.median(w.key, label)
                else "—" for label in cols))
        held = [results.cells[w.key].get(label, {}).get("held_max") for label in cols]
        if any(held):
            lines.append("| ↳ most chunks held ahead of the client | chunks ↓ | %s |" % " | ".join(
                "%d" % max(h) if h else "—" for h in held))
    return "\n".join(lines)


def _unit_of(w):
    if w.group == "rss":
        return "MiB"
    if w.group == "hot":
        return "us/call"
    if w.key.endswith("_seq"):
        return "us/req"
    if w.key.endswith(("_c100", "_t8")) or w.group == "servers":
        return "req/s"
    return "MiB/s"


SERVER_NAMES = {"srv_uvicorn": "uvicorn", "srv_gunicorn": "gunicorn gthread", "srv_gunicorn_sync": "gunicorn sync"}


def server_table(results):
    lines = ["**Real servers on 127.0.0.1** (req/s ↑; ratio to the native app on the same server, in the same "
             "run; ratio to ours-compiled; gunicorn sync is loaded by one connection, the others by "
             "--connections)", "",
             "| server | implementation | req/s | ÷ native | ÷ ours-compiled |", "|---|---|---|---|---|"]
    for w in SERVERS:
        if w.key not in results.cells:
            continue
        native = results.median(w.key, "native")
        ref = results.median(w.key, REF)
        for label in w.labels:
            cell = results.cells[w.key].get(label)
            if cell is None:
                continue
            value = results.median(w.key, label)
            if value is None:
                lines.append("| %s | %s | %s | — | — |" % (SERVER_NAMES[w.key], label, cell_text(results, w.key, label)))
                continue
            lines.append("| %s | %s | %.0f | %s | %s |" % (
                SERVER_NAMES[w.key], label, value, "%.2f" % (value / native) if native else "—",
                "%.2f" % (value / ref) if ref else "—"))
    return "\n".join(lines)


def callgrind_table(cg, results):
    labels = [label for label in ("ours-compiled", "ours-pure", "upstream", "hop") + peers.BEFORE_LABELS
              if any(row.get(label) is not None for row in cg.values())]
    lines = ["**Callgrind** (instructions per call, `PYTHONHASHSEED=0`; wall-time median in µs beside it)", "",
             "| function | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for func, row in cg.items():
        ref = row.get(REF)
        cells = []
        for label in labels:
            value = row.get(label)
            if value is None:
                cells.append("—")
                continue
            text = "%.0f" % value
            if ref and label != REF:
                text += " (%.2f×)" % (value / ref)
            wall = results.median(func, label)
            if wall is not None:
                text += "; %.2f µs" % wall
            cells.append(text)
        lines.append("| %s | %s |" % (func, " | ".join(cells)))
    return "\n".join(lines)


# ---------------------------------------------------------------- targets (issues 3, 4, 6, 14, 15)

def targets(results, quick=False):
    """``[(issue, text, status, detail)]`` for every target the issues state against this bench."""
    out = []
    m = results.median

    def add(issue, text, value_ok, detail):
        status = "n/a" if value_ok is None else ("met" if value_ok else "NOT met")
        out.append({"issue": issue, "target": text, "status": status, "detail": detail})

    def ratio(a, b):
        return None if a is None or b is None else a / b

    for issue, prefix, floor_name in ((3, "wa", "run_in_executor"), (4, "aw", "run_coroutine_threadsafe")):
        key = prefix + "_echo_seq"
        ours, floor, up = m(key, REF), m(key, "floor"), m(key, "upstream")
        r = ratio(ours, floor)
        add(issue, "small POST echo, sequential: ≤1.3× the %s floor" % floor_name,
            None if r is None else r <= 1.3,
            "ours %s µs, floor %s µs: %s× the floor" % (_f(ours), _f(floor), _f(r, 2)))
        r = ratio(up, ours)
        add(issue, "small POST echo, sequential: ≥3× faster than a2wsgi 1.10.10", None if r is None else r >= 3,
            "upstream %s µs, ours %s µs: %s× faster" % (_f(up), _f(ours), _f(r, 2)))
    for prefix in ("wa", "aw"):
        key = prefix + "_echo_seq"
        ours, hop = m(key, REF), m(key, "hop")
        r = ratio(ours, hop)
        out.append({"issue": 14, "target": "%s small POST echo, sequential: ≤1.15× the bare hop (reported, not "
                    "enforced)" % ("W→A" if prefix == "wa" else "A→W"),
                    "status": "n/a" if r is None else ("met" if r <= 1.15 else "NOT met"),
                    "detail": "ours %s µs, bare hop %s µs: %s× the hop, %s µs beyond it" % (
                        _f(ours), _f(hop), _f(r, 2), _f(None if r is None else ours - hop))})
        protocol = m(key, "protocol")
        if protocol is not None:
            # the hop plus the protocol work every W->A bridge does (workloads.py): the part of
            # the gap that no bridge can close, and what ours costs beyond it
            out[-1]["detail"] += "; protocol floor %s µs (%s× the hop), ours %s× the protocol floor" % (
                _f(protocol), _f(ratio(protocol, hop), 2), _f(ratio(ours, protocol), 2))
    inline, floor = m("aw_echo_seq", "ours-inline"), m("aw_echo_seq", "floor")
    r = ratio(inline, floor)
    add(15, "A→W small POST echo, sequential, inline=True: ≤0.3× the run_coroutine_threadsafe floor",
        None if r is None else r <= 0.3, "inline %s µs, floor %s µs: %s× the floor" % (_f(inline), _f(floor), _f(r, 2)))
    for label in ("ours-inline", REF):
        ours, native = m("srv_gunicorn_sync", label), m("srv_gunicorn_sync", "native")
        r = ratio(ours, native)
        add(15, "gunicorn sync worker, ASGI hello world (%s): ≥0.9 of native's req/s" % label,
            None if r is None else r >= 0.9, "%s %s req/s, native %s req/s (%s×)" % (label, _f(ours), _f(native),
                                                                                   _f(r, 2)))
    ours, uv, up = m("wa_echo_c100", REF), m("wa_echo_c100", "uvicorn"), m("wa_echo_c100", "upstream")
    add(3, "100 concurrent: req/s ≥ uvicorn's native middleware", None if ours is None or uv is None else ours >= uv,
        "ours %s req/s, uvicorn %s req/s (%s×)" % (_f(ours), _f(uv), _f(ratio(ours, uv), 2)))
    add(3, "100 concurrent: ≥3× a2wsgi 1.10.10", None if ours is None or up is None else ours >= 3 * up,
        "ours %s req/s, upstream %s req/s (%s×)" % (_f(ours), _f(up), _f(ratio(ours, up), 2)))
    ours, uv = m("wa_download", REF), m("wa_download", "uvicorn")
    add(3, "download in 64 KiB chunks: ≥3500 MiB/s class, at least uvicorn native's in the same run",
        None if ours is None or uv is None else ours >= uv,
        "ours %s MiB/s, uvicorn %s MiB/s (%s×)" % (_f(ours), _f(uv), _f(ratio(ours, uv), 2)))
    ours, uv = m("wa_download_q32", REF), m("wa_download_q32", "uvicorn")
    if ours is not None and uv is not None:
        out.append({"issue": 3, "target": "download with send_queue_size=32 (a knob: memory per streamed "
                    "response for throughput)", "status": "reported",
                    "detail": "ours %s MiB/s holding at most %s chunks, uvicorn %s MiB/s (%s×)" % (
                        _f(ours), _held(results, "wa_download_q32", REF), _f(uv), _f(ratio(ours, uv), 2))})
    for issue, key in ((3, "wa_download"), (4, "aw_download")):
        cell = results.cells.get(key, {}).get(REF, {})
        if cell.get("held_max"):
            held = max(cell["held_max"])
            if issue == 3:
                add(3, "download: at most send_queue_size (10) chunks held ahead of the client, plus the one "
                    "the producer holds while it waits", held <= 11, "ours: at most %d held (upstream %s, "
                    "uvicorn %s)" % (held, _held(results, key, "upstream"), _held(results, key, "uvicorn")))
            else:
                out.append({"issue": 4, "target": "download: a small bounded number of chunks held",
                            "status": "reported", "detail": "ours: at most %d held (upstream %s); compare "
                            "with the 1 GiB RSS run to see it does not grow" % (held, _held(results, key,
                                                                                                "upstream"))})
    for issue, key in ((3, "wa_upload"),):
        ours, up = m(key, REF), m(key, "upstream")
        add(issue, "upload in 64 KiB chunks: ≥3× a2wsgi 1.10.10", None if ours is None or up is None else ours >= 3 * up,
            "ours %s MiB/s, upstream %s MiB/s (%s×)" % (_f(ours), _f(up), _f(ratio(ours, up), 2)))
    ours, up = m("aw_echo_t8", REF), m("aw_echo_t8", "upstream")
    add(4, "8 WSGI threads: ≥3× a2wsgi's req/s", None if ours is None or up is None else ours >= 3 * up,
        "ours %s req/s, upstream %s req/s (%s×)" % (_f(ours), _f(up), _f(ratio(ours, up), 2)))
    for key, what in (("aw_download", "download"), ("aw_upload", "upload")):
        ours, up = m(key, REF), m(key, "upstream")
        add(4, "%s in 64 KiB chunks: ≥3× a2wsgi's MiB/s" % what, None if ours is None or up is None else ours >= 3 * up,
            "ours %s MiB/s, upstream %s MiB/s (%s×)" % (_f(ours), _f(up), _f(ratio(ours, up), 2)))
    for issue, key in ((3, "rss_wa_download"), (3, "rss_wa_upload"), (4, "rss_aw_download"), (4, "rss_aw_upload")):
        cells = results.cells.get(key, {})
        if REF not in cells:
            continue
        ours = m(key, REF)
        size = _size_text(next(w for w in RSS if w.key == key).quick if quick else 1024 * MiB)
        add(issue, "peak RSS growth streaming %s (%s): ≤16 MiB" % (size, key[4:]),
            None if ours is None else ours <= 16, "ours %s MiB (upstream %s MiB)" % (_f(ours), _f(m(key, "upstream"))))
    ours, up, pure = m("build_environ", REF), m("build_environ", "upstream"), m("build_environ", "ours-pure")
    add(6, "build_environ, 20 headers: compiled ≥5× faster than upstream's",
        None if ours is None or up is None else up >= 5 * ours,
        "compiled %s µs, upstream %s µs (%s×)" % (_f(ours), _f(up), _f(ratio(up, ours), 2)))
    add(6, "build_environ, 20 headers: compiled ≥3× faster than pure",
        None if ours is None or pure is None else pure >= 3 * ours,
        "compiled %s µs, pure %s µs (%s×)" % (_f(ours), _f(pure), _f(ratio(pure, ours), 2)))
    ours, up = m("build_scope", REF), m("build_scope", "upstream")
    add(6, "build_scope, 20 headers: compiled ≥5× faster than upstream's",
        None if ours is None or up is None else up >= 5 * ours,
        "compiled %s µs, upstream %s µs (%s×)" % (_f(ours), _f(up), _f(ratio(up, ours), 2)))
    slower, noisy = [], []
    compared = 0
    for w in ALL:
        c, p = m(w.key, REF), m(w.key, "ours-pure")
        if c is None or p is None:
            continue
        compared += 1
        if w.group == "rss":
            if c - p > 1.0:
                slower.append("%s %.1f MiB more" % (w.key, c - p))
            continue
        gain = p / c if w.better == "lower" else c / p
        if gain < 0.95:
            cv, pv = results.cells[w.key][REF]["values"], results.cells[w.key]["ours-pure"]["values"]
            apart = len(cv) >= 3 and len(pv) >= 3 and (
                (min(cv) > max(pv)) if w.better == "lower" else (max(cv) < min(pv)))
            (slower if apart else noisy).append("%s %.2f×" % (w.key, gain))
    add(6, "compiled never slower than pure, on any bench (slower: median ≥5% worse and the ranges of ≥3 "
        "repeats apart, or 1 MiB more RSS)", None if not compared else not slower,
        "%d benches compared; %s%s" % (compared, ("slower: " + ", ".join(slower)) if slower else "none slower",
                                       ("; within noise: " + ", ".join(noisy)) if noisy else ""))
    out.sort(key=lambda check: check["issue"])
    return out


def _held(results, key, label):
    cell = results.cells.get(key, {}).get(label, {})
    return "%d" % max(cell["held_max"]) if cell.get("held_max") else "n/a"


def _f(value, digits=None):
    if value is None:
        return "n/a"
    if digits is not None:
        return "%.*f" % (digits, value)
    return "%.1f" % value if abs(value) < 100 else "%.0f" % value


def machine():
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    mem = None
    with contextlib.suppress(OSError):
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    return {"cpu": model, "cpus": os.cpu_count(), "memory_mib": mem, "kernel": platform.release(),
            "python": platform.python_implementation() + " " + platform.python_version()}


def git_commit():
    with contextlib.suppress(Exception):
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    return None


# ---------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short pass of everything (CI smoke check)")
    parser.add_argument("--json", metavar="PATH", help="write the results here")
    parser.add_argument("--only", nargs="+", metavar="WORKLOAD", default=None,
                        help="workloads or groups to run: %s, or any of %s" % (
                            ", ".join(GROUPS), ", ".join(w.key for w in ALL)))
    parser.add_argument("--impl", nargs="+", metavar="LABEL", default=None, choices=ALL_LABELS,
                        help="implementations to run (default: all)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure (default 7, quick 1)")
    parser.add_argument("--rss-repeats", type=int, default=None, help="repeats per RSS figure (default 3, quick 1)")
    parser.add_argument("--server-repeats", type=int, default=None,
                        help="repeats per real-server figure (default 3, quick 1)")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per call with valgrind")
    parser.add_argument("--loadgen", choices=("wrk", "python"), default=None,
                        help="load generator for the real servers (default: wrk if installed)")
    parser.add_argument("--connections", type=int, default=16, help="load-generator connections (default 16)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a peer errors, too")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds a figure may take before its bridge counts as hung (default 600, quick 120)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for workers and servers")
    parser.add_argument("--ours", metavar="DIR", default=None,
                        help="measure the a2wsgi package in DIR as ours (e.g. a built checkout of another "
                             "commit); default: the one the interpreter imports")
    parser.add_argument("--before", metavar="DIR", default=None,
                        help="also measure the a2wsgi package in DIR (a built checkout of an earlier commit) "
                             "as before-compiled and before-pure, beside ours, wherever ours-compiled and "
                             "ours-pure are measured, in the same interleaved run")
    args = parser.parse_args(argv)
    if args.ours:
        peers.OURS_DIR = os.path.abspath(args.ours)
    if args.before:
        peers.BEFORE_DIR = os.path.abspath(args.before)
        for w in ALL:
            w.labels = tuple(w.labels) + tuple(b for o, b in zip(("ours-compiled", "ours-pure"), peers.BEFORE_LABELS)
                                               if o in w.labels)

    started = time.monotonic()
    selected = ALL
    if args.only:
        unknown = [x for x in args.only if x not in GROUPS and x not in {w.key for w in ALL}]
        if unknown:
            parser.error("unknown workload or group: %s" % ", ".join(unknown))
        selected = [w for w in ALL if w.key in args.only or w.group in args.only]
    labels = tuple(args.impl or (ALL_LABELS if args.before else
                                 [x for x in ALL_LABELS if x not in peers.BEFORE_LABELS]))
    repeats = args.repeats or (1 if args.quick else 7)
    rss_repeats = args.rss_repeats or (1 if args.quick else 3)
    server_repeats = args.server_repeats or (1 if args.quick else 3)
    loadgen = args.loadgen or ("wrk" if shutil.which("wrk") else "python")
    timeout = args.timeout or (120 if args.quick else 600)

    results = Results()
    try:
        peers.ensure_peers(args.python)
    except Exception as exc:  # noqa: BLE001 - no network, say: measure the others
        log("a2wsgi %s could not be installed, so it is not measured: %s" % (peers.UPSTREAM_VERSION, exc))
        labels = tuple(label for label in labels if label != "upstream")
        for w in selected:
            if "upstream" in w.labels:
                results.cell(w.key, "upstream")["na"] = "could not install a2wsgi %s" % peers.UPSTREAM_VERSION
    workers = {}
    logdir = tempfile.mkdtemp(prefix="a2wsgi-bench-")
    log("logs in %s" % logdir)
    in_process = [w for w in selected if w.group in ("wa", "aw", "hot")]
    if in_process:
        workers = run_in_process(in_process, labels, repeats, args.quick, args.python, logdir, results, timeout)
    rss = [w for w in selected if w.group == "rss"]
    if rss:
        run_rss(rss, labels, rss_repeats, args.quick, args.python, results, timeout)
    servers = [w for w in selected if w.group == "servers"]
    if servers:
        run_servers(servers, labels, server_repeats, args.quick, args.python, logdir, results, loadgen,
                    args.connections)
    cg = None
    if args.callgrind:
        import callgrind
        if callgrind.available():
            cg = callgrind.measure(calls=500 if args.quick else 2000, python=args.python, log=log,
                                   request_impls=callgrind.REQUEST_IMPLS + (peers.BEFORE_LABELS if args.before else ()))
        else:
            log("valgrind is not installed: no instruction counts")
    results.finish()

    command = "python bench/run.py" + ("" if argv is None and len(sys.argv) == 1 else
                                       " " + " ".join(sys.argv[1:] if argv is None else argv))
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command, "machine": machine(), "commit": git_commit(), "quick": args.quick,
            "repeats": {"in_process": repeats, "rss": rss_repeats, "servers": server_repeats},
            "loadgen": loadgen + (" -t1 -c%d" % args.connections), "workers": workers, "ours_dir": peers.OURS_DIR,
            "before_dir": peers.BEFORE_DIR,
            "seconds": round(time.monotonic() - started, 1)}
    checks = targets(results, args.quick)
    mach = meta["machine"]
    size_note = "" if not args.quick else " (--quick: smaller sizes, 1 repeat; a smoke check, not figures)"
    report = [
        "Machine: %s, %d CPUs, %s MiB RAM, Linux %s, %s. Date: %s. Commit: %s. Load: %s." % (
            mach["cpu"], mach["cpus"], mach["memory_mib"], mach["kernel"], mach["python"], meta["date"],
            meta["commit"], meta["loadgen"]),
        "Command: `%s`%s. Medians of %d repeats (RSS %d, servers %d), implementations interleaved." % (
            command, size_note, repeats, rss_repeats, server_repeats),
        "Cells: median (ratio to ours-compiled). ↓ lower is better, ↑ higher is better.",
        "",
    ]
    for label in ("ours-compiled", "ours-inline"):
        if (workers.get(label) or {}).get("speedups") is False:
            report[-1:-1] = ["**Warning: %s ran WITHOUT the compiled speedups** (not built? `python setup.py "
                             "build_ext --inplace`): its figures are the pure implementation's." % label]
            log("WARNING: %s ran without the compiled speedups" % label)
    for group, title in (("wa", "W→A in-process"), ("aw", "A→W in-process"), ("hot", "Hot paths"),
                         ("rss", "Peak RSS growth (VmHWM, fresh process per figure)")):
        text = table(results, [w for w in selected if w.group == group], ALL_LABELS, title, args.quick)
        if text:
            report += [text, ""]
    if servers:
        report += [server_table(results), ""]
    if cg:
        report += [callgrind_table(cg, results), ""]
    report += ["**Targets (issues 3, 4, 6, 14, 15)**", "", "| issue | target | status | figures |", "|---|---|---|---|"]
    report += ["| #%d | %s | %s | %s |" % (c["issue"], c["target"], c["status"], c["detail"]) for c in checks]
    errors = results.errors()
    if errors:
        report += ["", "**Errors**", ""]
        for key, label, texts in errors:
            lines = [x.strip() for x in texts[0].strip().splitlines() if x.strip()] or ["unknown error"]
            causes = [x for x in lines if "Error" in x and not x.startswith(("File ", "raise "))]
            report += ["- %s / %s: %s" % (key, label, (causes or lines)[-1][:300])]
    print("\n".join(report))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as out:
            json.dump({"meta": meta, "results": results.cells, "callgrind": cg, "targets": checks,
                       "errors": [{"workload": k, "impl": label, "errors": t} for k, label, t in errors]},
                      out, indent=1)
    log("done in %.0f s" % (time.monotonic() - started))
    failing = [e for e in errors if args.strict or peers.LABELS[e[1]].startswith("ours")]
    for key, label, texts in errors:
        log("\nERROR %s / %s:\n%s" % (key, label, texts[0]))
    if failing:
        log("FAILED: %s" % ", ".join("%s / %s" % (key, label) for key, label, _ in failing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
