//! The packet-I/O abstraction the worker loop runs over: DPDK queues in
//! production ([`crate::dpdk`]), in-memory queues in tests and benchmarks
//! (`crate::testing`, with the `testing` feature). Packets are
//! [`PacketBuf`]s: DPDK mbufs, or `dnlb_testkit::VecPacket` in tests.

/// Index of a port in the configuration's port list (not a DPDK port id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortIndex(pub u16);

impl PortIndex {
    /// As a `usize` for indexing.
    #[inline(always)]
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

use dnlb_wire::buf::PacketBuf;

/// A fixed-capacity burst of packets ([`BURST`] of them at most).
pub trait Burst: Default {
    /// The packet type.
    type Packet: PacketBuf;
    /// Packets held.
    fn len(&self) -> usize;
    /// Whether the burst is empty.
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether the burst is full.
    #[inline(always)]
    fn is_full(&self) -> bool {
        self.len() == BURST
    }
    /// The packets, mutable.
    fn as_mut_slice(&mut self) -> &mut [Self::Packet];
    /// Appends a packet; gives it back when full.
    fn push(&mut self, p: Self::Packet) -> Result<(), Self::Packet>;
    /// Moves all packets out in order.
    fn drain(&mut self) -> impl Iterator<Item = Self::Packet> + '_;
    /// Frees all packets; returns how many.
    fn free_all(&mut self) -> usize;
}

/// Packets per burst.
pub const BURST: usize = 32;

/// The queues one worker owns: an RX and a TX queue on every port.
pub trait PacketIo {
    /// The burst type (and through it the packet type).
    type Burst: Burst;
    /// Number of ports.
    fn port_count(&self) -> usize;
    /// Receives into the free room of `burst`; returns how many arrived.
    fn rx(&mut self, port: PortIndex, burst: &mut Self::Burst) -> usize;
    /// Sends from the front of `burst`; returns how many were taken. Refused
    /// packets stay in `burst`.
    fn tx(&mut self, port: PortIndex, burst: &mut Self::Burst) -> usize;
}
