//! Maglev table build for N backends at M = 65537 (the default size) and
//! M = 655373, next to straightforward implementations of the paper's
//! Pseudocode 1 as the reference (at 65537 also with the full permutation
//! table, which at 655373 would take 2.6 GB); the cost of a lookup; and the
//! cost of the flow hashes and flow-table fingerprints computed per packet.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnlb_lb::flow_table::{fingerprint_v4, fingerprint_v6};
use dnlb_lb::hash::{flow_hash_v4, flow_hash_v6};
use dnlb_lb::ids::BackendId;
use dnlb_lb::maglev::{identity, permutation, MaglevBackend, MaglevTable, DEFAULT_TABLE_SIZE};

use dnlb_testkit::SplitMix64 as Rng;

/// `n` backends with distinct IPv4 identities (10.x.y.z:8080), weight 100.
fn backends(n: u32) -> Vec<MaglevBackend> {
    (0..n)
        .map(|i| MaglevBackend {
            id: BackendId(i),
            identity: identity(
                (0x0a00_0001 + i).to_be_bytes().into(),
                8080,
                &dnlb_config::Tunnel::IpIp,
            ),
            weight: 100,
        })
        .collect()
}

/// The paper's Pseudocode 1, as written: the whole N×M permutation table
/// first (one `%` per entry), then the fill. Unweighted. Same offsets and
/// skips (`permutation`) and order as `MaglevTable::build` with equal
/// weights, so the result is the same table.
fn paper_build(backends: &[MaglevBackend], m: u32) -> Vec<u32> {
    let mut sorted = backends.to_vec();
    sorted.sort_by_key(|b| b.identity);
    let n = sorted.len();
    let m64 = u64::from(m);
    let mut perm = vec![0u32; n * m as usize];
    for (i, b) in sorted.iter().enumerate() {
        let (offset, skip) = permutation(&b.identity, m);
        let (offset, skip) = (u64::from(offset), u64::from(skip));
        for j in 0..m64 {
            perm[i * m as usize + j as usize] = ((offset + j * skip) % m64) as u32;
        }
    }
    let mut next = vec![0usize; n];
    let mut entry = vec![u32::MAX; m as usize];
    let mut filled = 0;
    loop {
        for i in 0..n {
            let mut c = perm[i * m as usize + next[i]];
            while entry[c as usize] != u32::MAX {
                next[i] += 1;
                c = perm[i * m as usize + next[i]];
            }
            entry[c as usize] = sorted[i].id.0;
            next[i] += 1;
            filled += 1;
            if filled == m {
                return entry;
            }
        }
    }
}

/// The paper's Pseudocode 1 with the permutation computed on demand
/// (`(offset + next * skip) % M` at each probe) instead of stored: the
/// straightforward implementation most people would write. Same table.
/// `M` is a constant, as in an implementation for one table size: the
/// compiler turns `% M` into multiplications.
fn paper_build_lazy<const M: u32>(backends: &[MaglevBackend]) -> Vec<u32> {
    let m = M;
    let mut sorted = backends.to_vec();
    sorted.sort_by_key(|b| b.identity);
    let m64 = u64::from(m);
    let perms: Vec<(u64, u64)> = sorted
        .iter()
        .map(|b| {
            let (o, s) = permutation(&b.identity, m);
            (u64::from(o), u64::from(s))
        })
        .collect();
    let mut next = vec![0u64; sorted.len()];
    let mut entry = vec![u32::MAX; m as usize];
    let mut filled = 0;
    loop {
        for (i, &(offset, skip)) in perms.iter().enumerate() {
            let mut c = ((offset + next[i] * skip) % m64) as usize;
            while entry[c] != u32::MAX {
                next[i] += 1;
                c = ((offset + next[i] * skip) % m64) as usize;
            }
            entry[c] = sorted[i].id.0;
            next[i] += 1;
            filled += 1;
            if filled == m {
                return entry;
            }
        }
    }
}

fn build(c: &mut Criterion) {
    build_size::<DEFAULT_TABLE_SIZE>(c);
    build_size::<655_373>(c);
}

/// Group `maglev_build_M`: dnlb for 10, 100 and 1000 backends, and the
/// references for 1000 (each checked to build the same table first).
fn build_size<const M: u32>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("maglev_build_{M}"));
    if M > DEFAULT_TABLE_SIZE {
        // About 10 ms a build: fewer, longer samples.
        g.sample_size(20);
    }
    for n in [10u32, 100, 1000] {
        let bs = backends(n);
        g.bench_function(format!("dnlb/{n}"), |b| {
            b.iter(|| MaglevTable::build(black_box(&bs), M).unwrap());
        });
    }
    let bs = backends(1000);
    let ours = MaglevTable::build(&bs, M).unwrap();
    let reference = paper_build_lazy::<M>(&bs);
    assert!(
        ours.entries()
            .iter()
            .map(|b| b.0)
            .eq(reference.iter().copied()),
        "the reference must build the same table"
    );
    g.bench_function("paper_pseudocode_on_demand/1000", |b| {
        b.iter(|| paper_build_lazy::<M>(black_box(&bs)));
    });
    if M == DEFAULT_TABLE_SIZE {
        assert_eq!(paper_build(&bs, M), reference);
        g.sample_size(10);
        g.bench_function("paper_pseudocode/1000", |b| {
            b.iter(|| paper_build(black_box(&bs), M));
        });
    }
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let table = MaglevTable::build(&backends(100), DEFAULT_TABLE_SIZE).unwrap();
    let mut r = Rng(1);
    let hashes: Vec<u64> = (0..1024).map(|_| r.next()).collect();
    let mut g = c.benchmark_group("maglev_lookup");
    g.throughput(Throughput::Elements(hashes.len() as u64));
    g.bench_function("65537", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &h in black_box(&hashes) {
                acc ^= table.lookup(h).map_or(0, |id| id.0);
            }
            acc
        });
    });
    g.finish();
}

fn hashes(c: &mut Criterion) {
    let mut r = Rng(2);
    let v4: Vec<([u8; 4], u16)> = (0..1024)
        .map(|_| ((r.next() as u32).to_be_bytes(), r.next() as u16))
        .collect();
    let v6: Vec<([u8; 16], u16)> = (0..1024)
        .map(|_| {
            let a = u128::from(r.next()) << 64 | u128::from(r.next());
            (a.to_be_bytes(), r.next() as u16)
        })
        .collect();
    let vip4 = [198, 51, 100, 10];
    let vip6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
    let mut g = c.benchmark_group("per_packet_hash");
    g.throughput(Throughput::Elements(1024));
    g.bench_function("flow_hash_v4", |b| {
        b.iter(|| {
            let mut acc = 0;
            for &(src, sport) in black_box(&v4) {
                acc ^= flow_hash_v4(src, vip4, 6, sport, 443);
            }
            acc
        });
    });
    g.bench_function("flow_hash_v6", |b| {
        b.iter(|| {
            let mut acc = 0;
            for &(src, sport) in black_box(&v6) {
                acc ^= flow_hash_v6(src, vip6, 6, sport, 443);
            }
            acc
        });
    });
    g.bench_function("fingerprint_v4", |b| {
        b.iter(|| {
            let mut acc = 0;
            for &(src, sport) in black_box(&v4) {
                acc ^= fingerprint_v4(0x1234, src, vip4, 6, sport, 443);
            }
            acc
        });
    });
    g.bench_function("fingerprint_v6", |b| {
        b.iter(|| {
            let mut acc = 0;
            for &(src, sport) in black_box(&v6) {
                acc ^= fingerprint_v6(0x1234, src, vip6, 6, sport, 443);
            }
            acc
        });
    });
    g.finish();
}

criterion_group!(benches, build, lookup, hashes);
criterion_main!(benches);
