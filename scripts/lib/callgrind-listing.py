#!/usr/bin/env python3
"""Instruction-level listing of one program's code in a callgrind profile.

    callgrind-listing.py PROFILE BINARY PACKETS [MIN]

PROFILE is one thread's callgrind output written with --dump-instr=yes;
BINARY the program whose own instructions are listed (the object callgrind
names with that path); PACKETS what the counts are divided by. Prints the
total of BINARY's instructions a packet, then every instruction executed at
least MIN times a packet (default 0.3), in address order: address, count a
packet, the disassembly (objdump) and the chain of functions it was inlined
from (addr2line -i, innermost first), so that a change to the packet path
can be read instruction by instruction. Used by bench-instructions.sh
--listing.
"""
import collections
import re
import subprocess
import sys


def costs(profile, binary):
    """Instructions executed at each address of `binary` in `profile`."""
    ir = collections.Counter()
    names = {}
    obj = None
    skip = False
    last = 0
    with open(profile) as f:
        for line in f:
            if line.startswith(("ob=", "cob=")):
                key, val = line.rstrip("\n").split("=", 1)
                m = re.match(r"\((\d+)\)(?: (.*))?", val)
                if m:
                    if m.group(2):
                        names[m.group(1)] = m.group(2)
                    val = names.get(m.group(1), val)
                if key == "ob":
                    obj = val
                continue
            if line.startswith("calls="):
                # The next cost line is the call's inclusive cost.
                skip = True
                continue
            if not line or line[0] not in "0123456789+-*":
                continue
            parts = line.split()
            a = parts[0]
            # Subposition compression: absolute, relative (+/- decimal) or
            # the same address (*).
            if a == "*":
                addr = last
            elif a[0] == "+":
                addr = last + int(a[1:], 0)
            elif a[0] == "-":
                addr = last - int(a[1:], 0)
            else:
                addr = int(a, 0)
            last = addr
            if skip:
                skip = False
                continue
            if obj == binary and len(parts) >= 3:
                ir[addr] += int(parts[2])
    return ir


def inline_chains(binary, addrs):
    """addr2line -i's function@file:line chain of each address."""
    out = subprocess.run(
        ["addr2line", "-f", "-i", "-C", "-a", "-e", binary],
        input="\n".join(hex(a) for a in addrs),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    chains, cur, i = {}, None, 0
    while i < len(out):
        if out[i].startswith("0x"):
            cur = int(out[i], 16)
            chains[cur] = []
            i += 1
        elif cur is not None and out[i]:
            fn = out[i].split("::")[-1][:30]
            loc = out[i + 1].split("/")[-1] if i + 1 < len(out) else "?"
            chains[cur].append(f"{fn}@{loc}")
            i += 2
        else:
            i += 1
    return chains


def disassembly(binary, lo, hi):
    """objdump's instruction text at each address in [lo, hi)."""
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", f"--start-address={lo:#x}",
         f"--stop-address={hi:#x}", binary],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ins = {}
    for line in out.split("\n"):
        m = re.match(r"\s*([0-9a-f]+):\s+(.*)", line)
        if m:
            ins[int(m.group(1), 16)] = re.sub(r"\s+<[^>]*>$", "", m.group(2).strip())
    return ins


def main():
    profile, binary, packets = sys.argv[1], sys.argv[2], int(sys.argv[3])
    least = float(sys.argv[4]) if len(sys.argv) > 4 else 0.3
    ir = costs(profile, binary)
    print(f"# {binary}: {sum(ir.values()) / packets:.1f} own instructions a packet")
    hot = sorted(a for a, n in ir.items() if n / packets >= least)
    if not hot:
        return
    chains = inline_chains(binary, hot)
    ins = disassembly(binary, hot[0], hot[-1] + 16)
    for a in hot:
        where = " < ".join(chains.get(a, [])[:3])
        print(f"{a:8x} {ir[a] / packets:6.2f}  {ins.get(a, '?'):40.40s}  {where}")


if __name__ == "__main__":
    main()
