#!/usr/bin/env python3
"""Send N UDP requests to VIP:PORT, each from a fresh socket (a new source
port, so a new flow), and print one line per request: the reply, or
`timeout` / `error ...`. Exit status 0 if every request got a reply.

    udp_client.py 203.0.113.10 80 --count 20 --timeout 2
"""
import argparse
import socket
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("vip")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--retries", type=int, default=1, help="resends per request on timeout")
    args = p.parse_args()
    fam = socket.AF_INET6 if ":" in args.vip else socket.AF_INET
    ok = 0
    for i in range(max(0, min(args.count, 10000))):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(args.timeout)
        try:
            s.connect((args.vip, args.port))
            reply = None
            for _ in range(1 + max(0, args.retries)):
                s.send(("request %d\n" % i).encode())
                try:
                    reply = s.recv(2048).decode(errors="replace").strip()
                    break
                except socket.timeout:
                    continue
            if reply is None:
                print("timeout")
            else:
                print(reply)
                ok += 1
        except OSError as e:
            print("error %s" % e)
        finally:
            s.close()
    sys.stdout.flush()
    return 0 if ok == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
