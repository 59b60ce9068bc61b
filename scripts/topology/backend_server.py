#!/usr/bin/env python3
"""dnlb test backend: answers HTTP (TCP) and UDP on every VIP and port given.

Each reply names the backend and what it saw, one line:

    backend=b1 zone=a proto=tcp client=198.18.0.1:40000 vip=203.0.113.10:80

(HTTP: that line is the body of a 200 response; HTTP/1.1 with a
Content-Length, so a keep-alive connection carries many requests; UDP: that
line is the reply datagram, sent from the VIP:port the request was addressed
to, so that the client's connected socket accepts it). Requests are logged, one line each, to
stderr in the same format. Python 3 standard library only.

    backend_server.py --name b1 --zone a --vip 203.0.113.10 --tcp 80 --udp 80 \
        --echo 7000 --health 8080

--echo PORT: a TCP line echo on every VIP (each line comes back prefixed with
"backend=NAME "), for long-lived connections. --health PORT: HTTP 200 "ok" on
every address (what the gateways' health checks probe).

Runs until SIGTERM/SIGINT.
"""
import argparse
import http.server
import signal
import socket
import socketserver
import sys
import threading


def line(args, proto, client, local):
    return "backend=%s zone=%s proto=%s client=%s:%d vip=%s:%d" % (
        args.name, args.zone, proto, client[0], client[1], local[0], local[1])


def make_handler(args):
    class Handler(http.server.BaseHTTPRequestHandler):
        # HTTP/1.1: the connection stays open for the next request unless
        # the client asks to close it (keepalive_client.py reuses it).
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            text = line(args, "tcp", self.client_address, self.connection.getsockname())
            body = (text + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            sys.stderr.write(text + " path=" + self.path + "\n")
            sys.stderr.flush()

        def log_message(self, fmt, *a):
            pass

    return Handler


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    # Room for many clients connecting at once (the default backlog is 5).
    request_queue_size = 128


class EchoHandler(socketserver.StreamRequestHandler):
    def handle(self):
        name = self.server.backend_name
        for raw in self.rfile:
            self.wfile.write(("backend=%s %s" % (name, raw.decode(errors="replace"))).encode())
            self.wfile.flush()


class HealthHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, fmt, *a):
        pass


def serve_udp(args, sock):
    while True:
        try:
            data, client = sock.recvfrom(2048)
        except OSError:
            return
        text = line(args, "udp", client, sock.getsockname())
        try:
            sock.sendto((text + "\n").encode(), client)
        except OSError as e:
            sys.stderr.write("udp send failed: %s\n" % e)
        sys.stderr.write(text + " bytes=%d\n" % len(data))
        sys.stderr.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--zone", default="-")
    p.add_argument("--vip", action="append", required=True, help="address to bind (repeat)")
    p.add_argument("--tcp", type=int, action="append", default=[], help="HTTP port (repeat)")
    p.add_argument("--udp", type=int, action="append", default=[], help="UDP port (repeat)")
    p.add_argument("--echo", type=int, action="append", default=[], help="TCP echo port (repeat)")
    p.add_argument("--health", type=int, help="HTTP health port on every address")
    args = p.parse_args()

    threads = []
    if args.health:
        h = TCPServer(("0.0.0.0", args.health), HealthHandler)
        threads.append(threading.Thread(target=h.serve_forever, daemon=True))
    for vip in args.vip:
        fam = socket.AF_INET6 if ":" in vip else socket.AF_INET
        srv_cls = TCPServer
        if fam == socket.AF_INET6:
            srv_cls = type("TCPServer6", (TCPServer,), {"address_family": socket.AF_INET6})
        for port in args.tcp:
            srv = srv_cls((vip, port), make_handler(args))
            threads.append(threading.Thread(target=srv.serve_forever, daemon=True))
        for port in args.echo:
            srv = srv_cls((vip, port), EchoHandler)
            srv.backend_name = args.name
            threads.append(threading.Thread(target=srv.serve_forever, daemon=True))
        for port in args.udp:
            s = socket.socket(fam, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((vip, port))
            threads.append(threading.Thread(target=serve_udp, args=(args, s), daemon=True))
    for t in threads:
        t.start()
    sys.stderr.write("backend %s (zone %s) listening on %s tcp=%s udp=%s echo=%s health=%s\n" % (
        args.name, args.zone, ",".join(args.vip), args.tcp, args.udp, args.echo, args.health))
    sys.stderr.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
