//! Packet I/O over DPDK queues: the production [`PacketIo`].

use dpdk_bindings::{Mbuf, MbufBurst, RxQueue, TxQueue};

use crate::io::{Burst, PacketIo, PortIndex};

impl Burst for MbufBurst {
    type Packet = Mbuf;
    #[inline(always)]
    fn len(&self) -> usize {
        MbufBurst::len(self)
    }
    #[inline(always)]
    fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        MbufBurst::as_mut_slice(self)
    }
    #[inline(always)]
    fn push(&mut self, p: Mbuf) -> Result<(), Mbuf> {
        MbufBurst::push(self, p)
    }
    #[inline(always)]
    fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        MbufBurst::drain(self)
    }
    #[inline(always)]
    fn free_all(&mut self) -> usize {
        MbufBurst::free_all(self)
    }
}

/// One worker's DPDK queues: `rx[i]` and `tx[i]` are its queues on port `i`.
#[derive(Debug)]
pub struct DpdkIo {
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
}

impl DpdkIo {
    /// Queues indexed by port index; both lists must be the same length.
    pub fn new(rx: Vec<RxQueue>, tx: Vec<TxQueue>) -> Self {
        assert_eq!(rx.len(), tx.len(), "one RX and one TX queue per port");
        DpdkIo { rx, tx }
    }
}

impl PacketIo for DpdkIo {
    type Burst = MbufBurst;

    #[inline(always)]
    fn port_count(&self) -> usize {
        self.rx.len()
    }

    #[inline(always)]
    fn rx(&mut self, port: PortIndex, burst: &mut MbufBurst) -> usize {
        self.rx[port.get()].rx_burst(burst)
    }

    #[inline(always)]
    fn tx(&mut self, port: PortIndex, burst: &mut MbufBurst) -> usize {
        self.tx[port.get()].tx_burst(burst)
    }
}
