//! Flow-table cost per packet: lookup hits at 1k and 1M flows (random order
//! over the stored fingerprints), one at a time and in bursts of 32 through
//! `lookup_burst` (which touches every bucket first so the misses overlap);
//! burst misses; inserts of new flows in steady state, alone and after the
//! lookup that missed them; and a failing insert into a full table.
//!
//! Goal (issue 3): 1M flows per worker in <= 64 MiB, lookups at 1M entries
//! within 2x of lookups at 1k.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnlb_lb::flow_table::FlowTable;

const BURST: usize = 32;
/// Long enough that nothing expires during a bench.
const TIMEOUT: u32 = 1 << 30;

use dnlb_testkit::SplitMix64 as Rng;

/// A table sized for `flows`, holding `flows` random fingerprints, and those
/// fingerprints in a random order (Fisher-Yates), padded to a multiple of
/// `BURST`.
fn filled(flows: usize, seed: u64) -> (FlowTable, Vec<u64>) {
    let mut r = Rng(seed);
    let mut t = FlowTable::new(flows);
    let mut fps: Vec<u64> = (0..flows).map(|_| r.next()).collect();
    for (i, &fp) in fps.iter().enumerate() {
        t.insert(fp, i as u32, 0, TIMEOUT).unwrap();
    }
    for i in (1..fps.len()).rev() {
        fps.swap(i, (r.next() % (i as u64 + 1)) as usize);
    }
    let pad = fps.len().next_multiple_of(BURST) - fps.len();
    fps.extend_from_within(..pad);
    (t, fps)
}

fn lookup_hit(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table_lookup_hit");
    g.throughput(Throughput::Elements(BURST as u64));
    for (name, flows) in [("1k", 1_000usize), ("1M", 1_000_000)] {
        let (mut t, fps) = filled(flows, 1);
        let timeouts = [TIMEOUT; BURST];
        let mut at = 0;
        g.bench_function(format!("single/{name}"), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for &fp in &fps[at..at + BURST] {
                    acc ^= t.lookup(fp, 1, TIMEOUT).unwrap_or(0);
                }
                at = (at + BURST) % fps.len();
                acc
            });
        });
        let mut out = [None; BURST];
        g.bench_function(format!("burst32/{name}"), |b| {
            b.iter(|| {
                t.lookup_burst(&fps[at..at + BURST], 1, &timeouts, &mut out);
                at = (at + BURST) % fps.len();
                black_box(&out);
            });
        });
    }
    g.finish();
}

fn lookup_miss(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table_lookup_miss");
    g.throughput(Throughput::Elements(BURST as u64));
    let (mut t, _) = filled(1_000_000, 1);
    let mut r = Rng(77);
    let misses: Vec<u64> = (0..1 << 16).map(|_| r.next()).collect();
    let timeouts = [TIMEOUT; BURST];
    let mut out = [None; BURST];
    let mut at = 0;
    g.bench_function("burst32/1M", |b| {
        b.iter(|| {
            t.lookup_burst(&misses[at..at + BURST], 1, &timeouts, &mut out);
            at = (at + BURST) % misses.len();
            black_box(&out);
        });
    });
    g.finish();
}

fn insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_table_insert");
    g.throughput(Throughput::Elements(BURST as u64));
    // Steady state: a 1M-flow table where new flows keep arriving and old
    // ones expire; the clock advances one tick per burst and a flow lives
    // 2^14 ticks, so about 2^14 * 32 = 524k flows are live, and inserts reuse
    // expired slots (no sweep).
    let mut t = FlowTable::new(1_000_000);
    let mut r = Rng(5);
    let life = 1 << 14;
    let mut now = 0u32;
    for _ in 0..2 * life {
        for _ in 0..BURST {
            t.insert(r.next(), 1, now, life).unwrap();
        }
        now += 1;
    }
    g.bench_function("new_flows_steady/1M", |b| {
        b.iter(|| {
            for _ in 0..BURST {
                t.insert(r.next(), 1, now, life).unwrap();
            }
            now = now.wrapping_add(1);
        });
    });
    // The same, as the load balancer stores a new flow: a lookup that misses,
    // then the insert (which need not look for the flow again).
    g.bench_function("new_flows_steady_after_miss/1M", |b| {
        b.iter(|| {
            for _ in 0..BURST {
                let fp = r.next();
                if t.lookup(fp, now, life).is_none() {
                    t.insert(fp, 1, now, life).unwrap();
                }
            }
            now = now.wrapping_add(1);
        });
    });
    // A full table (filled with live flows until the first TableFull): what a
    // new flow costs when it cannot be stored (the displacement search runs
    // and fails).
    let mut full = FlowTable::new(1_000_000);
    let mut r = Rng(6);
    while full.insert(r.next(), 1, 0, TIMEOUT).is_ok() {}
    let fill = full.len() as f64 / full.capacity() as f64;
    let mut failed = 0u64;
    g.bench_function(
        format!("into_full/1M ({:.1}% of slots)", fill * 100.0),
        |b| {
            b.iter(|| {
                for _ in 0..BURST {
                    failed += u64::from(full.insert(r.next(), 1, 1, TIMEOUT).is_err());
                }
            });
        },
    );
    black_box(failed);
    g.finish();
}

criterion_group!(benches, lookup_hit, lookup_miss, insert);
criterion_main!(benches);
