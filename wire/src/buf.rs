//! The packet buffer everything above the wire works on: bytes with
//! headroom in front, so an encapsulation can be prepended in place. DPDK
//! mbufs implement it (in `dpdk-bindings`), tests use `dnlb_testkit::VecPacket`.

/// A packet buffer with headroom.
pub trait PacketBuf {
    /// The packet bytes.
    fn data(&self) -> &[u8];
    /// The packet bytes, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the packet at the front by `len` bytes and returns them; `None`
    /// (and no change) if the headroom is too small.
    fn prepend(&mut self, len: u16) -> Option<&mut [u8]>;
    /// Removes `len` bytes from the front; `None` (and no change) if the
    /// packet is shorter.
    fn adj(&mut self, len: u16) -> Option<()>;
    /// Removes `len` bytes from the back; `None` (and no change) if the
    /// packet is shorter.
    fn trim(&mut self, len: u16) -> Option<()>;
    /// Length in bytes.
    #[inline(always)]
    fn len(&self) -> usize {
        self.data().len()
    }
    /// Whether the packet has no bytes.
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether all bytes are in [`PacketBuf::data`] (one buffer segment).
    #[inline(always)]
    fn is_contiguous(&self) -> bool {
        true
    }
}
