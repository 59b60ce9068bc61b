#!/usr/bin/env python3
"""Hostile datagrams at a gateway's sync port, for the sync fault tests.

Sends COUNT of each: random bytes (malformed), a well-formed Exceptions
message under the gateway's key id with a tag made with another key
(forged), and a message under a key id nobody has (forged). Prints
"sent N". See docs/sync.md for the message layout.
"""
import argparse
import hashlib
import hmac
import os
import socket
import struct


def key_id(key):
    return hashlib.sha256(b"dnlb-sync key id\0" + key).digest()[:4]


def message(kid, tag_key, seq):
    header = b"DNLS" + struct.pack(">BBH", 1, 1, 1) + kid
    header += struct.pack(">QQQQQQ", 0x1234, 1, seq, 1, 0, 0)
    entry = struct.pack(">QQQIB3x", 1, 2, 3, 60000, 0)
    body = header + entry
    return body + hmac.new(tag_key, body, hashlib.sha256).digest()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("key_file")
    p.add_argument("--count", type=int, default=20)
    a = p.parse_args()
    key = open(a.key_file, "rb").read()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    for i in range(a.count):
        for d in (os.urandom(64 + i),
                  message(key_id(key), os.urandom(32), i + 1),
                  message(os.urandom(4), os.urandom(32), i + 1)):
            s.sendto(d, (a.addr, a.port))
            sent += 1
    print("sent %d" % sent)


if __name__ == "__main__":
    main()
