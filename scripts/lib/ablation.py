#!/usr/bin/env python3
"""Source edits for scripts/bench-ablation.sh: each variant removes one part
of the load-balancing path (wrong on purpose, for measurement only), so that
the rate it gains is what that part costs through the whole forwarder.

    ablation.py list                 names and what each removes
    ablation.py apply TREE NAME      edits the source tree TREE in place
    ablation.py files                the files any variant edits
    ablation.py check [ROOT]         every variant's anchors still match the
                                     tree at ROOT (default: the repository)

Each edit replaces an anchor that must occur exactly once in its file; when
the code moves on, `apply` fails naming the variant and the file, and the
anchor here is what to update.
"""
import shutil
import sys
import tempfile
from pathlib import Path

FAST = "lb/src/processor/fast.rs"
PIPE = "dataplane/src/lb_pipeline.rs"
TABLE = "lb/src/flow_table/mod.rs"

FINISH_NOTHING = (
    FAST,
    "        if !s.is_usual() {\n            return None;\n        }\n        let tcp",
    "        if !s.is_usual() {\n            return None;\n        }\n"
    "        if std::hint::black_box(true) {\n"
    "            return Some(Action::Encapsulated(BackendId(0)));\n        }\n        let tcp",
)



def staged_usual_before(anchor, cond="std::hint::black_box(true)"):
    """An edit of the first stage: before `anchor`, if `cond`, it returns a
    staged record marked usual with nothing else in it."""
    return (
        FAST,
        anchor,
        f"        if {cond} {{\n"
        "            return Staged { who: Who::new(0, 0, 0, USUAL), ..Staged::default() };\n"
        f"        }}\n{anchor}",
    )


PARSED = "        if let Some((frame, p)) = parse::fast_v4(pkt.data()) {"

# name: (what it removes, [(file, anchor, replacement)])
VARIANTS = {
    "full": ("nothing (the build as it is)", []),
    "noop": (
        "all load-balancing work: each burst leaves by its port untouched "
        "(the driver and the worker loop alone)",
        [(
            PIPE,
            "        let non_vip = self.ports.non_vip[port.get()];\n",
            "        if std::hint::black_box(true) {\n"
            "            return BurstVerdict::Uniform(Verdict::Forward(port));\n        }\n"
            "        let non_vip = self.ports.non_vip[port.get()];\n",
        )],
    ),
    "parse": (
        "all but the quick parse and the two loops: the first stage stops after "
        "the parse, the second does nothing",
        [FINISH_NOTHING,
         staged_usual_before("        let tcp = t.proto == IPPROTO_TCP;\n")],
    ),
    "loops": (
        "all but the two loops over the burst and the staged records: the first "
        "stage reads no frame, the second does nothing",
        [FINISH_NOTHING, staged_usual_before(PARSED)],
    ),
    "touch": (
        "as loops, but the first stage reads each frame's EtherType (the mbuf and "
        "the frame's first line, without the parse)",
        [FINISH_NOTHING, staged_usual_before(
            PARSED, "std::hint::black_box(pkt.data().get(12).copied()).is_some()")],
    ),
    "stage": ("the second stage (lookup, encapsulation, counters)", [FINISH_NOTHING]),
    "nolookup": (
        "the flow-table lookup (the backend comes from the flow's mix; "
        "the buckets still load)",
        [(
            FAST,
            "match self.flows.lookup_probe(s.probe, now, timeout) {",
            "match Some(std::hint::black_box((s.mix >> 32) as u32 & 7)) {",
        )],
    ),
    "noencap": (
        "the encapsulation (no header written; the packet leaves as it came)",
        [(
            FAST,
            "if let Err(reason) = tpl.apply(pkt, 14, ip_len, s.mix, src_mac) {",
            "let _ = (tpl, src_mac);\n        let r: Result<(), _> = Ok(());\n"
            "        if let Err(reason) = std::hint::black_box(r) {",
        )],
    ),
    "nocount": (
        "the listener's and backend's sent counters",
        [(FAST, "self.counters.sent(s.who.slot(), backend, ip_len as u64);", "")],
    ),
    "nolistcount": (
        "the listener's sent counter (the backend's stays)",
        [(
            "lb/src/processor/counters.rs",
            "        if let Some(c) = self.listeners.get_mut(slot as usize) {\n            c.count(bytes);\n        }\n",
            "        let _ = slot;\n",
        )],
    ),
    "nofp": (
        "the fingerprint's keyed round (the fingerprint is the flow's mix)",
        [(
            FAST,
            ".probe_with::<SLOTS>(fingerprint_of_mix(self.seed, mix)),",
            ".probe_with::<SLOTS>(mix),",
        )],
    ),
    "noprefetch": (
        "the first stage's bucket prefetch",
        [(
            TABLE,
            "        crate::prefetch::prefetch(self.bucket(b1));\n        if BOTH",
            "        if BOTH",
        )],
    ),
}


def apply(tree: Path, name: str) -> None:
    for rel, anchor, new in VARIANTS[name][1]:
        path = tree / rel
        text = path.read_text()
        n = text.count(anchor)
        if n != 1:
            sys.exit(f"ablation {name}: its anchor occurs {n} times in {rel} "
                     f"(expected once): update scripts/lib/ablation.py")
        path.write_text(text.replace(anchor, new))


def check(root: Path) -> None:
    """Applies every variant, in turn, to a copy of the files they edit."""
    files = sorted({e[0] for _, es in VARIANTS.values() for e in es})
    with tempfile.TemporaryDirectory() as tmp:
        for name in VARIANTS:
            for rel in files:
                (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(root / rel, Path(tmp) / rel)
            apply(Path(tmp), name)
    print(f"ablation: all {len(VARIANTS)} variants apply")


def main() -> None:
    if sys.argv[1:] == ["list"]:
        for name, (what, _) in VARIANTS.items():
            print(f"{name}\t{what}")
    elif sys.argv[1:] == ["files"]:
        print("\n".join(sorted({e[0] for _, es in VARIANTS.values() for e in es})))
    elif sys.argv[1:2] == ["check"] and len(sys.argv) <= 3:
        check(Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parents[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "apply":
        if sys.argv[3] not in VARIANTS:
            sys.exit(f"unknown variant {sys.argv[3]}; `ablation.py list` names them")
        apply(Path(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
