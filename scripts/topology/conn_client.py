#!/usr/bin/env python3
"""Long-lived TCP connections through a VIP, for failure tests.

Opens COUNT connections to VIP:PORT (a line-echo service, see
backend_server.py --echo), learns which backend each one reached, writes
READY_FILE, then keeps exchanging a line on every connection each INTERVAL
seconds for DURATION seconds. A connection fails when a send or receive
errors or takes longer than TIMEOUT, or when a different backend answers.
Prints one summary line:

    conns=50 failed=0 rounds=40 backends=b1:17,b2:16,b3:17 failed_by_backend=

and per failed connection a line "failed conn=K backend=B error=...".
Exit status 0 (the caller judges the numbers).
"""
import argparse
import socket
import sys
import time


def exchange(sock, f, msg, timeout):
    sock.settimeout(timeout)
    sock.sendall(msg.encode())
    reply = f.readline()
    if not reply:
        raise OSError("connection closed")
    word = reply.split()[0]
    if not word.startswith("backend="):
        raise OSError("unexpected reply %r" % reply)
    return word[len("backend="):]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("vip")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--ready-file", required=True)
    a = p.parse_args()

    conns = []
    for k in range(a.count):
        s = socket.create_connection((a.vip, a.port), timeout=a.timeout)
        f = s.makefile("r", encoding="utf-8", errors="replace")
        backend = exchange(s, f, "hello %d\n" % k, a.timeout)
        conns.append({"k": k, "sock": s, "file": f, "backend": backend, "error": None})
    with open(a.ready_file, "w") as out:
        out.write("ready %d\n" % len(conns))
    rounds = 0
    end = time.monotonic() + a.duration
    while time.monotonic() < end:
        rounds += 1
        for c in conns:
            if c["error"]:
                continue
            try:
                b = exchange(c["sock"], c["file"], "round %d conn %d\n" % (rounds, c["k"]), a.timeout)
                if b != c["backend"]:
                    c["error"] = "moved from %s to %s" % (c["backend"], b)
            except (OSError, ValueError) as e:
                c["error"] = str(e) or type(e).__name__
        time.sleep(a.interval)
    per = {}
    failed_by = {}
    for c in conns:
        per[c["backend"]] = per.get(c["backend"], 0) + 1
        if c["error"]:
            failed_by[c["backend"]] = failed_by.get(c["backend"], 0) + 1
            print("failed conn=%d backend=%s error=%s" % (c["k"], c["backend"], c["error"]))
    fmt = lambda d: ",".join("%s:%d" % kv for kv in sorted(d.items()))
    print("conns=%d failed=%d rounds=%d backends=%s failed_by_backend=%s" % (
        len(conns), sum(failed_by.values()), rounds, fmt(per), fmt(failed_by)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
