//! Building and publishing a load-balancing snapshot for 1000 backends over
//! 10 listeners (10 target groups of 100 backends, Maglev tables of 65537):
//! a full build, a rebuild after one backend's weight changed (one table
//! rebuilt, the rest reused), and the publication itself.

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use dnlb_dataplane::snapshot::Publisher;
use dnlb_lb::snapshot::{BackendRegistry, Snapshot};

fn config(changed_weight: u8) -> dnlb_config::Config {
    let mut t = String::from(
        "[gateway]\nname = \"bench\"\n[dataplane]\nworker_lcores = [1]\n[[dataplane.ports]]\nname = \"net_null0\"\n\
         [encap]\nsource_v4 = \"192.0.2.254\"\nnext_hop_mac = \"02:00:00:00:00:fe\"\n",
    );
    for l in 0..10 {
        t += &format!(
            "[[listener]]\nname = \"l{l}\"\nvips = [\"192.0.2.{}\"]\nprotocol = \"tcp\"\nport = 80\ntarget_group = \"g{l}\"\n",
            l + 1
        );
    }
    for g in 0..10 {
        t += &format!("[[target_group]]\nname = \"g{g}\"\n");
        for b in 0..100 {
            let w = if g == 0 && b == 0 {
                changed_weight
            } else {
                100
            };
            t += &format!(
                "[[target_group.backend]]\naddress = \"10.{g}.{}.{}\"\ntunnel = \"vxlan\"\nvni = {b}\ninner_mac = \"02:00:00:00:00:01\"\nweight = {w}\n",
                b / 250,
                b % 250 + 1
            );
        }
    }
    dnlb_config::parse(Path::new("bench.toml"), &t).unwrap()
}

fn bench(c: &mut Criterion) {
    let a = config(100);
    let b = config(50);
    let mut reg = BackendRegistry::default();
    let base = Snapshot::build(&a, 1, &mut reg).unwrap();
    let mut g = c.benchmark_group("snapshot_1000_backends_10_listeners");
    g.sample_size(20);
    g.bench_function("parse_and_validate_config", |bch| {
        bch.iter(|| config(100));
    });
    g.bench_function("full_build", |bch| {
        bch.iter(|| Snapshot::build(&a, 2, &mut reg).unwrap());
    });
    g.bench_function("rebuild_one_weight_changed", |bch| {
        bch.iter(|| {
            let (s, built) = Snapshot::build_from(&b, 2, &mut reg, Some(&base)).unwrap();
            assert_eq!(built, 1);
            s
        });
    });
    let publisher = Publisher::new(Arc::new(base.clone()));
    let mut readers: Vec<_> = (0..4).map(|_| publisher.reader()).collect();
    let next = Arc::new(base.clone());
    g.bench_function("publish_and_4_readers_switch", |bch| {
        bch.iter(|| {
            publisher.publish(next.clone());
            for r in readers.iter_mut() {
                r.refresh();
            }
            publisher.reclaim();
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
