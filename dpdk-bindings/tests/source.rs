//! What a traffic source uses: bulk allocation into a burst and the link
//! state, against a real EAL on a `net_ring` loopback.

mod common;

use std::sync::Arc;

use dpdk_bindings::{port_by_name, MbufBurst, Mempool, MempoolConfig, Port, PortConfig, QueueId};
use rusty_fork::rusty_fork_test;

rusty_fork_test! {
    #[test]
    fn bulk_allocation_fills_a_burst_all_or_none() {
        let eal = common::init(&["-l", "0", "--vdev=net_ring0"]);
        // No per-lcore cache, so the pool's count is exact.
        let cfg = MempoolConfig { cache_size: 0, ..MempoolConfig::new("t_bulk", 63) };
        let pool = Arc::new(Mempool::new(&eal, &cfg).unwrap());
        let mut b = MbufBurst::new();
        assert!(pool.alloc_bulk(&mut b, 0));
        assert!(pool.alloc_bulk(&mut b, 20));
        assert_eq!(b.len(), 20);
        assert!(b.as_slice().iter().all(|m| m.is_empty() && m.headroom() > 0));
        // more than the burst's free slots: nothing happens
        assert!(!pool.alloc_bulk(&mut b, 13));
        assert_eq!(b.len(), 20);
        assert!(pool.alloc_bulk(&mut b, 12));
        assert!(b.is_full());
        let mut c = MbufBurst::new();
        // 31 left in the pool: asking 32 fails whole
        assert_eq!(pool.available(), 31);
        assert!(!pool.alloc_bulk(&mut c, 32));
        assert!(c.is_empty());
        assert_eq!(pool.available(), 31);
        for m in b.as_mut_slice() {
            m.append(60).unwrap().fill(0x5a);
        }
        // through the ring and back
        let id = port_by_name(&eal, "net_ring0").unwrap();
        let port = Port::start(&eal, id, &PortConfig::default(), pool.clone()).unwrap();
        assert!(port.link().unwrap().up);
        let mut tx = port.tx_queue(QueueId(0)).unwrap();
        let mut rx = port.rx_queue(QueueId(0)).unwrap();
        assert_eq!(tx.tx_burst(&mut b), 32);
        assert_eq!(rx.rx_burst(&mut c), 32);
        assert!(c.as_slice().iter().all(|m| m.data() == [0x5a; 60]));
        assert_eq!(c.free_all(), 32);
        assert_eq!(pool.available(), 63);
    }
}
