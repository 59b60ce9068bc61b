//! The worker loop on DPDK `net_pcap` ports with pcap fixtures made by the
//! test: the frames that come out are asserted byte for byte.

mod common;

use std::sync::Arc;

use dnlb_dataplane::dpdk::DpdkIo;
use dnlb_dataplane::{DropReason, ForwardPipeline, PortIndex, PublishedCounters, Worker};
use dnlb_testkit::{frames, read_pcap, write_pcap, FlowMix, IpVersion, Proto};
use dpdk_bindings::{port_by_name, Eal, Mempool, MempoolConfig, Port, PortConfig, QueueId};
use rusty_fork::rusty_fork_test;

rusty_fork_test! {
    #[test]
    fn two_pcap_ports_cross_forward_exact_frames() {
        let dir = common::tempdir();
        let a_in = frames(&FlowMix { flows: 300, proto: Proto::Udp, ip: IpVersion::V4, frame_len: 60, ..FlowMix::default() });
        let mut b_in = frames(&FlowMix { flows: 200, proto: Proto::Tcp, ip: IpVersion::V6, frame_len: 200, ..FlowMix::default() });
        // odd sizes, including a jumbo-ish frame that still fits one mbuf
        b_in.push(vec![0xab; 1514]);
        b_in.push(vec![0xcd; 61]);
        write_pcap(&dir.path().join("a.pcap"), &a_in).unwrap();
        write_pcap(&dir.path().join("b.pcap"), &b_in).unwrap();

        let mut args = common::eal_args("pcap");
        args.push("-l".into());
        args.push("0".into());
        args.push(format!("--vdev=net_pcap0,rx_pcap={},tx_pcap={}", common::path_str(dir.path(), "a.pcap"), common::path_str(dir.path(), "a_out.pcap")));
        args.push(format!("--vdev=net_pcap1,rx_pcap={},tx_pcap={}", common::path_str(dir.path(), "b.pcap"), common::path_str(dir.path(), "b_out.pcap")));
        let eal = Eal::init(args).unwrap();
        let pool = Arc::new(Mempool::new(&eal, &MempoolConfig::new("pcap_pool", 4095)).unwrap());
        let ports: Vec<Port> = ["net_pcap0", "net_pcap1"]
            .iter()
            .map(|n| Port::start(&eal, port_by_name(&eal, n).unwrap(), &PortConfig::default(), pool.clone()).unwrap())
            .collect();
        let rx = ports.iter().map(|p| p.rx_queue(QueueId(0)).unwrap()).collect();
        let tx = ports.iter().map(|p| p.tx_queue(QueueId(0)).unwrap()).collect();
        let published = Arc::new(PublishedCounters::default());
        let mut w = Worker::new(
            DpdkIo::new(rx, tx),
            ForwardPipeline::new(vec![Some(PortIndex(1)), Some(PortIndex(0))]),
            dnlb_config::IdlePolicy::BusyPoll,
            published.clone(),
        );
        let want = (a_in.len() + b_in.len()) as u64;
        let mut polls = 0;
        while w.counters().rx_packets < want && polls < 100_000 {
            w.poll_once();
            polls += 1;
        }
        let c = *w.counters();
        assert_eq!(c.rx_packets, want);
        assert_eq!(c.tx_packets, want);
        assert_eq!(c.drops_for(DropReason::TxRefused), 0);
        let stats: Vec<_> = ports.iter().map(|p| p.stats().unwrap()).collect();
        assert_eq!(stats[0].rx_packets, a_in.len() as u64);
        assert_eq!(stats[1].tx_packets, a_in.len() as u64);
        // The output files are complete once the ports are closed.
        drop(w);
        drop(ports);
        assert_eq!(read_pcap(&dir.path().join("b_out.pcap")).unwrap(), a_in);
        assert_eq!(read_pcap(&dir.path().join("a_out.pcap")).unwrap(), b_in);
        drop(pool);
        drop(eal);
    }
}
