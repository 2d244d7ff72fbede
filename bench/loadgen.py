"""A small HTTP/1.1 load generator, used when ``wrk`` is not installed.

    python loadgen.py URL --connections 16 --duration 5

Each connection is a thread with one keep-alive ``http.client`` connection, sending GET requests
back to back. Prints one JSON line: requests, seconds, rps, non2xx, errors. It is far slower than
wrk (the GIL is shared by all connections), so compare its figures only with each other.
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.url)
    target = url.path or "/"
    counts = {"requests": 0, "non2xx": 0, "errors": 0}
    lock = threading.Lock()
    deadline = [0.0]
    start_gate = threading.Barrier(args.connections + 1)

    def connection():
        done = non2xx = errors = 0
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        start_gate.wait()
        while time.perf_counter() < deadline[0]:
            try:
                conn.request("GET", target)
                response = conn.getresponse()
                response.read()
                done += 1
                if not 200 <= response.status < 300:
                    non2xx += 1
                if response.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.close()
        with lock:
            counts["requests"] += done
            counts["non2xx"] += non2xx
            counts["errors"] += errors

    threads = [threading.Thread(target=connection, daemon=True) for _ in range(args.connections)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    deadline[0] = start + args.duration
    start_gate.wait()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    counts["seconds"] = seconds
    counts["rps"] = counts["requests"] / seconds
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
