//! The worker loop's own cost per packet, over in-memory I/O that recycles
//! packets (no allocation): what the loop adds on top of the PMD.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dnlb_benches::LoopIo;
use dnlb_dataplane::{ForwardPipeline, PortIndex, Worker, BURST};
use dnlb_testkit::{frames, FlowMix};

fn worker_loop(c: &mut Criterion) {
    let f = frames(&FlowMix::default());
    let mut g = c.benchmark_group("worker_loop");
    g.throughput(Throughput::Elements(BURST as u64));
    for ports in [1usize, 2] {
        let to: Vec<Option<PortIndex>> = (0..ports)
            .map(|p| Some(PortIndex(((p + 1) % ports) as u16)))
            .collect();
        let mut w = Worker::new(
            LoopIo::new(ports, &f, 4 * BURST),
            ForwardPipeline::new(to),
            dnlb_config::IdlePolicy::BusyPoll,
            Default::default(),
        );
        g.bench_function(format!("forward_burst_{ports}port"), |b| {
            b.iter(|| w.poll_once());
        });
    }
    g.finish();
}

criterion_group!(benches, worker_loop);
criterion_main!(benches);
