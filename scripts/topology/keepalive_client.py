#!/usr/bin/env python3
"""HTTP keep-alive connections and new connections through a VIP, for flood tests.

Opens CONNS persistent HTTP/1.1 connections to VIP:PORT (one thread each,
http.client), writes READY_FILE once they all answered a first request, then
each connection sends a GET every INTERVAL seconds until DURATION seconds
have passed since the start. Meanwhile NEW_WORKERS threads each open a new
connection, send one GET ("Connection: close") and close it, every
NEW_INTERVAL seconds. A request succeeds when a 200 response whose body starts
with "backend=" arrives within TIMEOUT seconds (connect included); a failed
keep-alive connection is counted, then reopened.

A request is counted as "during" the flood if FLOOD_FILE exists when it starts
or when it ends (the test script creates the file when the flood starts and
removes it when the flood has stopped).

Prints one JSON object at the end (exit status 0; the caller judges):

    {"duration_s": 30.0,
     "established": {"conns": 50, "setup_ok": 50, "ok": 7000, "failed": 0,
                     "during": {"ok": 3000, "failed": 0,
                                "latency_ms": {"p50": 1.2, "p99": 8.0, "max": 40.1}},
                     "errors": {}, "backends": {"b1": 25, "b2": 25}},
     "new": {"ok": ..., "failed": ..., "during": {...}, "errors": {...}}}

Python 3 standard library only.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time


class Tally:
    """Outcomes of one kind of request (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = 0
        self.during_ok = 0
        self.during_failed = 0
        self.during_latency = []
        self.errors = {}

    def add(self, ok, during, latency, error=None):
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
                self.errors[error] = self.errors.get(error, 0) + 1
            if during:
                if ok:
                    self.during_ok += 1
                    self.during_latency.append(latency)
                else:
                    self.during_failed += 1

    def report(self):
        with self.lock:
            return self._report()

    def _report(self):
        lat = sorted(self.during_latency)

        def pct(p):
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1)

        return {
            "ok": self.ok,
            "failed": self.failed,
            "during": {
                "ok": self.during_ok,
                "failed": self.during_failed,
                "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
            },
            "errors": self.errors,
        }


def get(conn, path, close):
    """One GET on conn; returns the backend's name or raises."""
    headers = {"Connection": "close"} if close else {}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200 or not body.startswith(b"backend="):
        raise ValueError("status %d body %r" % (resp.status, body[:60]))
    return body.split()[0][len(b"backend="):].decode()


def error_name(e):
    name = type(e).__name__
    return "timeout" if name in ("timeout", "TimeoutError") else name


class Run:
    def __init__(self, a):
        self.a = a
        self.start = time.monotonic()
        self.end = self.start + a.duration
        self.established = Tally()
        self.new = Tally()
        self.setup_ok = 0
        self.setup_errors = {}
        self.backends = {}
        self.lock = threading.Lock()
        self.ready = threading.Barrier(a.conns + 1)

    def flooding(self):
        return bool(self.a.flood_file) and os.path.exists(self.a.flood_file)

    def timed_get(self, conn, path, close):
        during = self.flooding()
        t0 = time.monotonic()
        backend = get(conn, path, close)
        return backend, time.monotonic() - t0, during or self.flooding()

    def keepalive(self, k):
        a = self.a
        conn = http.client.HTTPConnection(a.vip, a.port, timeout=a.timeout)
        try:
            backend, _, _ = self.timed_get(conn, "/ka-%d-0" % k, False)
            with self.lock:
                self.setup_ok += 1
                self.backends[backend] = self.backends.get(backend, 0) + 1
        except (OSError, http.client.HTTPException, ValueError) as e:
            with self.lock:
                self.setup_errors[error_name(e)] = self.setup_errors.get(error_name(e), 0) + 1
            conn.close()
            conn = None
        try:
            self.ready.wait(timeout=a.timeout * 2)
        except threading.BrokenBarrierError:
            pass
        n = 0
        while time.monotonic() + a.interval < self.end:
            time.sleep(a.interval)
            n += 1
            if conn is None:
                conn = http.client.HTTPConnection(a.vip, a.port, timeout=a.timeout)
            t0 = time.monotonic()
            during = self.flooding()
            try:
                _, latency, during = self.timed_get(conn, "/ka-%d-%d" % (k, n), False)
                self.established.add(True, during, latency)
            except (OSError, http.client.HTTPException, ValueError) as e:
                during = during or self.flooding()
                self.established.add(False, during, time.monotonic() - t0, error_name(e))
                conn.close()
                conn = None  # reopened for the next request
        if conn is not None:
            conn.close()

    def new_conns(self, w):
        a = self.a
        n = 0
        while time.monotonic() < self.end:
            n += 1
            t0 = time.monotonic()
            during = self.flooding()
            conn = http.client.HTTPConnection(a.vip, a.port, timeout=a.timeout)
            try:
                _, latency, during = self.timed_get(conn, "/new-%d-%d" % (w, n), True)
                self.new.add(True, during, latency)
            except (OSError, http.client.HTTPException, ValueError) as e:
                during = during or self.flooding()
                self.new.add(False, during, time.monotonic() - t0, error_name(e))
            finally:
                conn.close()
            time.sleep(a.new_interval)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("vip")
    p.add_argument("port", type=int)
    p.add_argument("--conns", type=int, default=50, help="keep-alive connections")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between requests per connection")
    p.add_argument("--new-workers", type=int, default=2, help="threads opening new connections")
    p.add_argument("--new-interval", type=float, default=0.05, help="pause between new connections per thread")
    p.add_argument("--duration", type=float, default=30, help="seconds, from the start")
    p.add_argument("--timeout", type=float, default=5, help="seconds per request, connect included")
    p.add_argument("--ready-file", required=True)
    p.add_argument("--flood-file", help="requests while this file exists count as 'during'")
    a = p.parse_args()

    run = Run(a)
    threads = [threading.Thread(target=run.keepalive, args=(k,), daemon=True) for k in range(a.conns)]
    for t in threads:
        t.start()
    try:
        run.ready.wait(timeout=a.timeout * 2)
    except threading.BrokenBarrierError:
        pass
    with open(a.ready_file, "w") as out:
        out.write("ready %d\n" % run.setup_ok)
    news = [threading.Thread(target=run.new_conns, args=(w,), daemon=True) for w in range(a.new_workers)]
    for t in news:
        t.start()
    # Every request is bounded by the timeout: so is the wait.
    for t in threads + news:
        t.join(timeout=max(0.0, run.end - time.monotonic()) + a.timeout + 1)
    est = run.established.report()
    est.update({"conns": a.conns, "setup_ok": run.setup_ok, "setup_errors": run.setup_errors,
                "backends": run.backends})
    print(json.dumps({
        "duration_s": round(time.monotonic() - run.start, 1),
        "established": est,
        "new": run.new.report(),
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
