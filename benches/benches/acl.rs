//! Access-list cost per packet: a source address checked against lists of
//! 10, 1000 and 5000 IPv4 prefixes (random /8 to /32, allow and deny mixed)
//! and 1000 IPv6 prefixes, for random sources in bursts of 1024.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnlb_lb::acl::AclTable;
use dnlb_model::{Acl, AclAction, Cidr};
use dnlb_testkit::SplitMix64 as Rng;

const PROBES: usize = 1024;

fn v4_list(rng: &mut Rng, n: usize) -> Acl {
    let rules = (0..n)
        .map(|i| {
            let len = 8 + (rng.next() % 25) as u8;
            let a = u32::from_be_bytes(rng.v4()) & (u32::MAX << (32 - len));
            let action = if i % 3 == 0 {
                AclAction::Deny
            } else {
                AclAction::Allow
            };
            (
                Cidr {
                    addr: IpAddr::V4(Ipv4Addr::from(a)),
                    len,
                },
                action,
            )
        })
        .collect();
    Acl {
        default: AclAction::Deny,
        rules,
    }
}

fn v6_list(rng: &mut Rng, n: usize) -> Acl {
    let rules = (0..n)
        .map(|_| {
            let len = 16 + (rng.next() % 113) as u8;
            let a = (u128::from(rng.next()) << 64 | u128::from(rng.next()))
                & (u128::MAX << (128 - u32::from(len)));
            (
                Cidr {
                    addr: IpAddr::V6(Ipv6Addr::from(a)),
                    len,
                },
                AclAction::Allow,
            )
        })
        .collect();
    Acl {
        default: AclAction::Deny,
        rules,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("acl");
    g.throughput(Throughput::Elements(PROBES as u64));
    let mut rng = Rng(7);
    let v4: Vec<[u8; 4]> = (0..PROBES).map(|_| rng.v4()).collect();
    for n in [10, 1000, 5000] {
        let t = AclTable::build(&v4_list(&mut rng, n), 1);
        g.bench_function(format!("v4/{n}_prefixes"), |b| {
            b.iter(|| {
                let mut allowed = 0u32;
                for a in &v4 {
                    allowed += u32::from(t.check_v4(black_box(*a)).allow);
                }
                allowed
            })
        });
    }
    let v6: Vec<[u8; 16]> = (0..PROBES)
        .map(|_| (u128::from(rng.next()) << 64 | u128::from(rng.next())).to_be_bytes())
        .collect();
    let t = AclTable::build(&v6_list(&mut rng, 1000), 1);
    g.bench_function("v6/1000_prefixes", |b| {
        b.iter(|| {
            let mut allowed = 0u32;
            for a in &v6 {
                allowed += u32::from(t.check_v6(black_box(*a)).allow);
            }
            allowed
        })
    });
    let big = v4_list(&mut rng, 1000);
    g.bench_function("build/v4_1000_prefixes", |b| {
        b.iter(|| AclTable::build(black_box(&big), 1))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
