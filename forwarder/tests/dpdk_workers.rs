//! The whole forwarder (`control::run`) in-process with several workers and
//! queues on `net_null` and `net_ring`, stopped through its shutdown flag.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dnlb_forwarder::control::{run, Event, Events, RunOptions};
use rusty_fork::rusty_fork_test;

/// CPU time this process has used (user + system, from /proc).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command's closing parenthesis; utime and stime
    // are the 14th and 15th of the whole line, in clock ticks (100 Hz).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    Duration::from_millis((f[0] + f[1]) * 10)
}

fn config(extra_eal: &[&str], workers: &str, idle: &str, ports: &str) -> dnlb_config::Config {
    let mut eal = common::eal_args("workers");
    eal.extend(extra_eal.iter().map(|s| s.to_string()));
    let text = format!(
        "[gateway]\nname = \"t\"\n[dataplane]\neal_args = {}\nworker_lcores = {workers}\npool_mbufs = 8191\n{idle}\n{ports}",
        common::toml_list(&eal)
    );
    dnlb_config::parse(Path::new("test.toml"), &text).unwrap()
}

/// Runs the forwarder until a stats event satisfies `until` (waiting at
/// most a generous deadline: a loaded machine slows the test, it does not
/// fail it).
fn run_until(
    cfg: dnlb_config::Config,
    until: impl Fn(&Event) -> bool,
) -> dnlb_forwarder::control::RunReport {
    let shutdown = Arc::new(AtomicBool::new(false));
    let s = shutdown.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let opts = RunOptions {
        stats_interval: Some(Duration::from_millis(20)),
        events: Events::to(move |e| {
            let _ = tx.send(e.clone());
        }),
        ..RunOptions::default()
    };
    let t = std::thread::spawn(move || run(&cfg, &opts, &s));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(e) if matches!(e, Event::Stats { .. }) && until(&e) => break,
            _ => {}
        }
    }
    shutdown.store(true, Ordering::SeqCst);
    t.join().unwrap().unwrap()
}

rusty_fork_test! {
    #[test]
    fn two_workers_each_own_a_queue_pair_on_every_port() {
        // Three lcores on two CPUs; net_null generates packets on every RX
        // queue and drops what is sent; net_ring loops TX back to RX per queue.
        let cfg = config(
            &["--lcores=0@0,1@0,2@1"],
            "[1, 2]",
            "",
            "[[dataplane.ports]]\nname = \"net_null0\"\ndevargs = \"size=64,copy=0\"\nforward_to = \"net_null0\"\n\
             [[dataplane.ports]]\nname = \"net_ring0\"\n",
        );
        // The stats events' worker load and cost per packet, once traffic flows.
        let load = std::cell::Cell::new((0.0, 0.0));
        let report = run_until(cfg, |e| {
            if let Event::Stats { busy_percent, cycles_per_packet, rx_pps, .. } = e {
                if *rx_pps > 0.0 {
                    load.set((*busy_percent, *cycles_per_packet));
                }
            }
            matches!(e, Event::Stats { rx_packets, .. } if *rx_packets > 100_000)
        });
        let (busy, cycles) = load.get();
        assert!(busy > 0.0 && busy <= 100.0 && cycles > 0.0, "busy {busy} %, {cycles} cycles a packet");
        assert_eq!(report.workers.len(), 2);
        for (lcore, c) in &report.workers {
            assert!(c.rx_packets > 1000, "worker on lcore {lcore} received only {}", c.rx_packets);
            assert!(c.busy_cycles > 0, "lcore {lcore}: {c:?}");
            assert_eq!(c.rx_packets, c.tx_packets + c.dropped(), "lcore {lcore}: {c:?}");
        }
        assert_eq!(report.workers.iter().map(|w| w.0).collect::<Vec<_>>(), vec![1, 2]);
        let null = &report.ports[0].1;
        let total = report.total();
        // Everything the workers received came from net_null (the ring only
        // carries what was sent to it, and nothing was).
        assert_eq!(null.rx_packets, total.rx_packets);
        assert_eq!(null.tx_packets, total.tx_packets);
    }

    #[test]
    fn idle_workers_back_off() {
        let cfg = config(
            &["--lcores=0@0,1@0,2@0"],
            "[1, 2]",
            "idle_polls_before_sleep = 10\nidle_sleep_us = 1000",
            "[[dataplane.ports]]\nname = \"net_ring0\"\n",
        );
        // CPU and wall time from the first stats event (the EAL is up).
        let since = std::cell::Cell::new(None);
        let report = run_until(cfg, |e| {
            if since.get().is_none() {
                since.set(Some((cpu_time(), Instant::now())));
            }
            matches!(e, Event::Stats { idle_sleeps, uptime_secs, .. } if *idle_sleeps > 1000 && *uptime_secs > 1.0)
        });
        let (cpu0, wall0) = since.get().expect("a stats event");
        let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
        // Two busy-polling workers would keep their core busy the whole
        // time; sleeping ones leave it mostly idle. (A loaded machine only
        // lowers what this process gets, so it cannot fail this check.)
        assert!(
            cpu < wall / 2,
            "the idle workers used {cpu:?} of CPU in {wall:?}: they did not sleep"
        );
        for (lcore, c) in &report.workers {
            assert_eq!(c.rx_packets, 0);
            assert_eq!(c.busy_cycles, 0, "lcore {lcore} idle but busy: {c:?}");
            assert!(c.idle_sleeps > 10, "lcore {lcore} never slept: {c:?}");
            // Every tenth empty poll is followed by a sleep: a worker that
            // did not back off would poll far more often than it slept.
            assert!(
                c.empty_polls <= 10 * (c.idle_sleeps + 1),
                "lcore {lcore} did not back off: {c:?}"
            );
        }
    }

    #[test]
    fn disabled_worker_lcore_is_a_clear_error() {
        let cfg = config(&["--lcores=0@0,1@0"], "[1, 3]", "", "[[dataplane.ports]]\nname = \"net_ring0\"\n");
        let shutdown = AtomicBool::new(false);
        let err = run(&cfg, &RunOptions::default(), &shutdown).unwrap_err();
        assert_eq!(err.to_string(), "worker lcore 3 is not enabled by the EAL arguments (check -l/--lcores in dataplane.eal_args)");
    }

    #[test]
    fn missing_port_is_a_clear_error() {
        // The port name is valid, but net_ring needs no file: use a pcap
        // device whose input file does not exist, so the probe fails.
        let cfg = config(&[], "[1]", "", "[[dataplane.ports]]\nname = \"net_pcap0\"\ndevargs = \"rx_pcap=/nonexistent/in.pcap\"\n");
        let shutdown = AtomicBool::new(false);
        let err = run(&cfg, &RunOptions::default(), &shutdown).unwrap_err().to_string();
        assert!(err.contains("rte_eal_init failed") || err.contains("no DPDK port named \"net_pcap0\""), "{err}");
    }

    #[test]
    fn a_memif_client_without_its_server_names_the_port_and_the_cause() {
        let sock = std::env::temp_dir().join(format!("dnlb-no-server-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&sock);
        let cfg = config(
            &[],
            "[1]",
            "idle_polls_before_sleep = 10\nidle_sleep_us = 1000",
            &format!(
                "[[dataplane.ports]]\nname = \"net_memif0\"\ndevargs = \"role=client,socket={},socket-abstract=no\"\n",
                sock.display()
            ),
        );
        let shutdown = AtomicBool::new(false);
        let err = run(&cfg, &RunOptions::default(), &shutdown).unwrap_err().to_string();
        assert!(err.starts_with("port net_memif0: "), "{err}");
        assert!(err.contains("is the server running"), "{err}");
    }
}
