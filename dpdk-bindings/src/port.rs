//! Ethernet ports: configuration with N RX/TX queues and RSS, start/stop/close,
//! and per-queue handles that do burst RX/TX.

use std::ffi::{CStr, CString};
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::eal::{Eal, SocketId};
use crate::error::{check, Error, Result};
use crate::mbuf::MbufBurst;
use crate::mempool::Mempool;
use crate::sys;

/// A DPDK ethernet port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A queue index on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueId(pub u16);

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How to set a port up.
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// Number of RX queues (one per worker that polls this port).
    pub rx_queues: u16,
    /// Number of TX queues (one per worker that sends on this port).
    pub tx_queues: u16,
    /// RX descriptors per queue (adjusted to the device's limits).
    pub rx_descriptors: u16,
    /// TX descriptors per queue (adjusted to the device's limits).
    pub tx_descriptors: u16,
    /// Spread flows over RX queues by RSS on IP/TCP/UDP headers, where the
    /// device supports it (only matters with more than one RX queue).
    pub rss: bool,
    /// Receive frames for any destination MAC.
    pub promiscuous: bool,
    /// MTU to set, if not the device default.
    pub mtu: Option<u16>,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            rss: true,
            promiscuous: true,
            mtu: None,
        }
    }
}

/// What the device reported about itself.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// Driver name, e.g. "net_pcap".
    pub driver: String,
    /// Device name as given to EAL, e.g. "net_pcap0".
    pub name: String,
    /// Maximum RX queues.
    pub max_rx_queues: u16,
    /// Maximum TX queues.
    pub max_tx_queues: u16,
    /// RSS hash functions the device supports (DPDK `RTE_ETH_RSS_*` bits).
    pub rss_offloads: u64,
    /// NUMA socket of the device.
    pub socket: SocketId,
}

/// Port counters as the driver keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets the device dropped because RX queues were full.
    pub rx_missed: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_no_mbuf: u64,
}

struct PortShared {
    id: PortId,
    name: String,
    // Keeps the pool alive while the PMD holds mbufs from it.
    _pool: Arc<Mempool>,
    _eal: Eal,
    taken: Mutex<(Vec<bool>, Vec<bool>)>,
}

impl Drop for PortShared {
    fn drop(&mut self) {
        // SAFETY: the last handle (Port or queue) is gone, so no thread polls
        // this port any more; stop then close is the documented teardown.
        unsafe {
            sys::rte_eth_dev_stop(self.id.0);
            sys::rte_eth_dev_close(self.id.0);
        }
    }
}

/// A configured port. Its queues are handed out once each
/// ([`Port::rx_queue`], [`Port::tx_queue`]); the port is stopped and closed
/// when the `Port` and all its queues are dropped.
#[derive(Clone)]
pub struct Port {
    shared: Arc<PortShared>,
    rx_queues: u16,
    tx_queues: u16,
}

impl fmt::Debug for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("rx_queues", &self.rx_queues)
            .field("tx_queues", &self.tx_queues)
            .finish()
    }
}

/// Finds a probed port by its device name (e.g. "net_ring0").
pub fn port_by_name(_eal: &Eal, name: &str) -> Result<PortId> {
    let c = CString::new(name).map_err(|_| Error::NulInArgument(name.to_string()))?;
    let mut id: u16 = 0;
    // SAFETY: c is a valid C string; id is a valid out-pointer.
    let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
    if ret < 0 {
        return Err(Error::NoSuchPort(name.to_string()));
    }
    Ok(PortId(id))
}

/// Number of ports EAL probed.
pub fn port_count(_eal: &Eal) -> u16 {
    // SAFETY: EAL is initialised.
    unsafe { sys::rte_eth_dev_count_avail() }
}

/// Reads a port's device information.
pub fn port_info(_eal: &Eal, id: PortId) -> Result<PortInfo> {
    let mut info = sys::rte_eth_dev_info::default();
    // SAFETY: info is a valid out-pointer; invalid ids return -ENODEV.
    check("rte_eth_dev_info_get", unsafe {
        sys::rte_eth_dev_info_get(id.0, &mut info)
    })?;
    let mut name = [0 as std::ffi::c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: name is a buffer of RTE_ETH_NAME_MAX_LEN bytes as required.
    check("rte_eth_dev_get_name_by_port", unsafe {
        sys::rte_eth_dev_get_name_by_port(id.0, name.as_mut_ptr())
    })?;
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: driver_name points to a static string of the driver.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    // SAFETY: the buffer was NUL-terminated by DPDK.
    let name = unsafe { CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: plain query on a valid port.
    let socket = SocketId(unsafe { sys::rte_eth_dev_socket_id(id.0) });
    Ok(PortInfo {
        driver,
        name,
        max_rx_queues: info.max_rx_queues,
        max_tx_queues: info.max_tx_queues,
        rss_offloads: info.flow_type_rss_offloads,
        socket,
    })
}

impl Port {
    /// Configures port `id` with `cfg`, sets up its queues with buffers from
    /// `pool`, and starts it.
    pub fn start(eal: &Eal, id: PortId, cfg: &PortConfig, pool: Arc<Mempool>) -> Result<Port> {
        let info = port_info(eal, id)?;
        if cfg.rx_queues == 0 || cfg.rx_queues > info.max_rx_queues {
            return Err(Error::Unsupported {
                port: id.0,
                what: format!(
                    "{} RX queues requested, device allows 1..={}",
                    cfg.rx_queues, info.max_rx_queues
                ),
            });
        }
        if cfg.tx_queues == 0 || cfg.tx_queues > info.max_tx_queues {
            return Err(Error::Unsupported {
                port: id.0,
                what: format!(
                    "{} TX queues requested, device allows 1..={}",
                    cfg.tx_queues, info.max_tx_queues
                ),
            });
        }
        let mut conf = sys::rte_eth_conf::default();
        // SAFETY: no preconditions (returns a constant).
        let wanted_rss = unsafe { sys::dnlb_rss_hf_ip_tcp_udp() } & info.rss_offloads;
        if cfg.rss && cfg.rx_queues > 1 && wanted_rss != 0 {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = wanted_rss;
        }
        // SAFETY: conf is a valid, fully initialised configuration.
        check("rte_eth_dev_configure", unsafe {
            sys::rte_eth_dev_configure(id.0, cfg.rx_queues, cfg.tx_queues, &conf)
        })?;
        let (mut nrx, mut ntx) = (cfg.rx_descriptors, cfg.tx_descriptors);
        // SAFETY: valid out-pointers.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            sys::rte_eth_dev_adjust_nb_rx_tx_desc(id.0, &mut nrx, &mut ntx)
        })?;
        let socket = if info.socket.0 < 0 {
            0
        } else {
            info.socket.0 as u32
        };
        for q in 0..cfg.rx_queues {
            // SAFETY: port configured above; null rxconf means driver defaults;
            // the pool outlives the port (PortShared holds it).
            check("rte_eth_rx_queue_setup", unsafe {
                sys::rte_eth_rx_queue_setup(id.0, q, nrx, socket, std::ptr::null(), pool.as_ptr())
            })?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: port configured above; null txconf means driver defaults.
            check("rte_eth_tx_queue_setup", unsafe {
                sys::rte_eth_tx_queue_setup(id.0, q, ntx, socket, std::ptr::null())
            })?;
        }
        if let Some(mtu) = cfg.mtu {
            // SAFETY: plain call on a configured port.
            check("rte_eth_dev_set_mtu", unsafe {
                sys::rte_eth_dev_set_mtu(id.0, mtu)
            })?;
        }
        // SAFETY: all queues are set up.
        check("rte_eth_dev_start", unsafe { sys::rte_eth_dev_start(id.0) })?;
        if cfg.promiscuous {
            // Virtual devices without the notion return -ENOTSUP: harmless.
            // SAFETY: plain call on a started port.
            let _ = unsafe { sys::rte_eth_promiscuous_enable(id.0) };
        }
        Ok(Port {
            shared: Arc::new(PortShared {
                id,
                name: info.name,
                _pool: pool,
                _eal: eal.clone(),
                taken: Mutex::new((
                    vec![false; cfg.rx_queues as usize],
                    vec![false; cfg.tx_queues as usize],
                )),
            }),
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
        })
    }

    /// The port id.
    pub fn id(&self) -> PortId {
        self.shared.id
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Configured RX queues.
    pub fn rx_queue_count(&self) -> u16 {
        self.rx_queues
    }

    /// Configured TX queues.
    pub fn tx_queue_count(&self) -> u16 {
        self.tx_queues
    }

    /// Takes RX queue `q`; each queue can be taken once.
    pub fn rx_queue(&self, q: QueueId) -> Result<RxQueue> {
        self.take(q, true)?;
        Ok(RxQueue {
            port: self.shared.id.0,
            queue: q.0,
            _shared: self.shared.clone(),
        })
    }

    /// Takes TX queue `q`; each queue can be taken once.
    pub fn tx_queue(&self, q: QueueId) -> Result<TxQueue> {
        self.take(q, false)?;
        Ok(TxQueue {
            port: self.shared.id.0,
            queue: q.0,
            _shared: self.shared.clone(),
        })
    }

    fn take(&self, q: QueueId, rx: bool) -> Result<()> {
        let mut taken = self.shared.taken.lock().unwrap_or_else(|e| e.into_inner());
        let list = if rx { &mut taken.0 } else { &mut taken.1 };
        match list.get_mut(q.0 as usize) {
            Some(t) if !*t => {
                *t = true;
                Ok(())
            }
            _ => Err(Error::QueueUnavailable {
                port: self.shared.id.0,
                kind: if rx { "rx" } else { "tx" },
                queue: q.0,
            }),
        }
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6]> {
        let mut a = sys::rte_ether_addr::default();
        // SAFETY: valid out-pointer.
        check("rte_eth_macaddr_get", unsafe {
            sys::rte_eth_macaddr_get(self.shared.id.0, &mut a)
        })?;
        Ok(a.addr_bytes)
    }

    /// The driver's counters.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: valid out-pointer.
        check("rte_eth_stats_get", unsafe {
            sys::rte_eth_stats_get(self.shared.id.0, &mut s)
        })?;
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_no_mbuf: s.rx_nombuf,
        })
    }

    /// Stops the port now (bursts then return nothing). It is closed when the
    /// last handle goes.
    pub fn stop(&self) -> Result<()> {
        // SAFETY: stopping a started port; pollers see dummy burst functions.
        check("rte_eth_dev_stop", unsafe {
            sys::rte_eth_dev_stop(self.shared.id.0)
        })
        .map(|_| ())
    }
}

/// One RX queue of a port, owned by one worker.
pub struct RxQueue {
    port: u16,
    queue: u16,
    _shared: Arc<PortShared>,
}

impl fmt::Debug for RxQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RxQueue({}:{})", self.port, self.queue)
    }
}

impl RxQueue {
    /// Port id.
    pub fn port(&self) -> PortId {
        PortId(self.port)
    }

    /// Queue index.
    pub fn queue(&self) -> QueueId {
        QueueId(self.queue)
    }

    /// Receives into the free slots of `burst`; returns how many arrived.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut MbufBurst) -> usize {
        let (ptr, room) = burst.spare_raw();
        if room == 0 {
            return 0;
        }
        // SAFETY: ptr has room for `room` mbuf pointers; this handle is the
        // only poller of (port, queue) because queues are handed out once.
        let n = unsafe { sys::dnlb_rx_burst(self.port, self.queue, ptr, room) } as usize;
        // SAFETY: the PMD wrote n owned mbufs into those slots.
        unsafe { burst.commit(n) };
        n
    }
}

/// One TX queue of a port, owned by one worker.
pub struct TxQueue {
    port: u16,
    queue: u16,
    _shared: Arc<PortShared>,
}

impl fmt::Debug for TxQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TxQueue({}:{})", self.port, self.queue)
    }
}

impl TxQueue {
    /// Port id.
    pub fn port(&self) -> PortId {
        PortId(self.port)
    }

    /// Queue index.
    pub fn queue(&self) -> QueueId {
        QueueId(self.queue)
    }

    /// Sends from the front of `burst`; returns how many the driver took.
    /// Packets it refused stay in `burst` (at the front), for the caller to
    /// retry, or free and count.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut MbufBurst) -> usize {
        let (ptr, len) = burst.live_raw();
        if len == 0 {
            return 0;
        }
        // SAFETY: ptr holds len owned mbufs; this handle is the only sender on
        // (port, queue).
        let n = unsafe { sys::dnlb_tx_burst(self.port, self.queue, ptr, len) } as usize;
        // SAFETY: the driver now owns the first n mbufs.
        unsafe { burst.consume_front(n) };
        n
    }
}
