//! The safe layer against a real EAL on virtual devices.

mod common;

use std::sync::Arc;

use dpdk_bindings::{
    port_by_name, sys, Eal, Error, LcoreId, MbufBurst, Mempool, MempoolConfig, Port, PortConfig,
    QueueId,
};
use rusty_fork::rusty_fork_test;

rusty_fork_test! {
    #[test]
    fn eal_initialises_once_per_process() {
        let eal = common::init(&["-l", "0"]);
        assert_eq!(eal.lcore_count(), 1);
        assert!(eal.worker_lcores().is_empty());
        assert!(Eal::version().starts_with("DPDK "));
        match Eal::init(common::eal_args(&[])) {
            Err(Error::EalAlreadyInitialized) => {}
            other => panic!("second init: {other:?}"),
        }
    }

    #[test]
    fn the_runtime_directory_goes_with_the_last_handle() {
        let eal = common::init(&["-l", "0"]);
        let dir = eal.runtime_dir().expect("a runtime directory").to_path_buf();
        assert!(dir.ends_with(format!("dnlb-bt-{}", std::process::id())), "{}", dir.display());
        assert!(dir.is_dir(), "{} while EAL runs", dir.display());
        drop(eal);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    #[test]
    fn bad_eal_argument_is_a_typed_error() {
        match Eal::init(common::eal_args(&["--definitely-not-an-eal-flag"])) {
            Err(Error::Call { call: "rte_eal_init", .. }) => {}
            other => panic!("expected rte_eal_init error, got {other:?}"),
        }
    }

    #[test]
    fn mbuf_arithmetic_matches_dpdk() {
        let eal = common::init(&["-l", "0"]);
        let pool = Mempool::new(&eal, &MempoolConfig::new("t_pool", 511)).unwrap();
        let mut m = pool.alloc_with(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let c = pool.alloc_with(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        assert_eq!(m.headroom(), sys::RTE_PKTMBUF_HEADROOM as usize);
        // SAFETY: c is a valid single-segment mbuf we own.
        unsafe {
            assert_eq!(m.headroom(), sys::dnlb_pktmbuf_headroom(c.as_raw()) as usize);
            assert_eq!(m.tailroom(), sys::dnlb_pktmbuf_tailroom(c.as_raw()) as usize);
        }
        // prepend
        m.prepend(50).unwrap().fill(0xee);
        // SAFETY: as above.
        let p = unsafe { sys::dnlb_pktmbuf_prepend(c.as_raw(), 50) };
        assert!(!p.is_null());
        // SAFETY: 50 bytes at p are inside c's buffer.
        unsafe { std::ptr::write_bytes(p, 0xee, 50) };
        assert_eq!(m.data(), c.data());
        assert_eq!(m.len(), 58);
        assert_eq!(m.pkt_len(), 58);
        // SAFETY: as above.
        assert_eq!(m.data().as_ptr() as usize - m.as_raw() as usize, unsafe { sys::dnlb_pktmbuf_mtod(c.as_raw()) } as usize - c.as_raw() as usize);
        // adj
        m.adj(20).unwrap();
        // SAFETY: as above.
        assert!(!unsafe { sys::dnlb_pktmbuf_adj(c.as_raw(), 20) }.is_null());
        assert_eq!(m.data(), c.data());
        // append
        m.append(10).unwrap().fill(7);
        // SAFETY: as above.
        let p = unsafe { sys::dnlb_pktmbuf_append(c.as_raw(), 10) };
        // SAFETY: 10 bytes at p are inside c's buffer.
        unsafe { std::ptr::write_bytes(p as *mut u8, 7, 10) };
        assert_eq!(m.data(), c.data());
        assert_eq!(m.headroom(), c.headroom());
        assert_eq!(m.tailroom(), c.tailroom());
        // limits: too much headroom asked leaves the mbuf unchanged
        let before = m.data().to_vec();
        assert!(m.prepend(4000).is_none());
        assert!(m.adj(4000).is_none());
        assert_eq!(m.data(), &before[..]);
        let in_use = pool.in_use();
        drop(m);
        drop(c);
        assert_eq!(pool.in_use(), in_use - 2);
    }

    #[test]
    fn ring_port_round_trip_and_queue_ownership() {
        // net_ring loops TX of a queue back to RX of the same queue.
        let eal = common::init(&["-l", "0", "--vdev=net_ring0"]);
        let pool = Arc::new(Mempool::new(&eal, &MempoolConfig::new("t_pool", 1023)).unwrap());
        let id = port_by_name(&eal, "net_ring0").unwrap();
        let port = Port::start(&eal, id, &PortConfig::default(), pool.clone()).unwrap();
        let mut rx = port.rx_queue(QueueId(0)).unwrap();
        let mut tx = port.tx_queue(QueueId(0)).unwrap();
        assert!(matches!(port.rx_queue(QueueId(0)), Err(Error::QueueUnavailable { .. })));
        assert!(matches!(port.tx_queue(QueueId(7)), Err(Error::QueueUnavailable { .. })));
        let mut b = MbufBurst::new();
        for i in 0..10u8 {
            b.push(pool.alloc_with(&[i; 60]).unwrap()).unwrap();
        }
        assert_eq!(tx.tx_burst(&mut b), 10);
        assert!(b.is_empty());
        let mut r = MbufBurst::new();
        assert_eq!(rx.rx_burst(&mut r), 10);
        for (i, m) in r.as_slice().iter().enumerate() {
            assert_eq!(m.data(), &[i as u8; 60]);
        }
        assert_eq!(r.free_all(), 10);
        let st = port.stats().unwrap();
        assert_eq!((st.tx_packets, st.rx_packets), (10, 10));
        assert!(matches!(port_by_name(&eal, "net_ring9"), Err(Error::NoSuchPort(_))));
    }

    #[test]
    fn launch_runs_on_worker_lcores() {
        let eal = common::init(&["--lcores=0@0,1@0,2@0"]);
        let workers = eal.worker_lcores();
        assert_eq!(workers, vec![LcoreId(1), LcoreId(2)]);
        let handles: Vec<_> = workers
            .iter()
            .map(|&l| eal.launch(l, move || Eal::current_lcore().map_or(-1, |c| c.0 as i32)).unwrap())
            .collect();
        let rcs: Vec<i32> = handles.into_iter().map(|h| h.wait()).collect();
        assert_eq!(rcs, vec![1, 2]);
        assert!(matches!(eal.launch(LcoreId(0), || 0), Err(Error::LcoreUnavailable(0))));
        assert!(matches!(eal.launch(LcoreId(9), || 0), Err(Error::LcoreUnavailable(9))));
        // a panicking closure reports -1 instead of unwinding into C
        let h = eal.launch(LcoreId(1), || panic!("boom")).unwrap();
        assert_eq!(h.wait(), -1);
    }
}
