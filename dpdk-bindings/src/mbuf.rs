//! Single mbufs as byte slices, and fixed-size bursts of them.
//!
//! The data-pointer arithmetic (`mtod`, prepend, adj, append) is done in Rust
//! on the mbuf's fields, mirroring DPDK's static-inline functions, so the per
//! packet path makes no FFI call. Tests check it against the C originals.

use std::fmt;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::sys;

/// An owned packet buffer. Dropping it returns it to its pool.
///
/// Only the first segment is exposed as bytes; multi-segment mbufs (which the
/// ports configured by this crate do not produce) report `is_contiguous() ==
/// false` so callers can drop them.
#[repr(transparent)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is uniquely owned; DPDK mbufs may move between threads
// (freeing from another lcore is allowed, the mempool is thread-safe).
unsafe impl Send for Mbuf {}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("headroom", &self.headroom())
            .field("port", &self.port())
            .finish()
    }
}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `p` must be a valid mbuf that nobody else owns or frees, with its
    /// buffer (`buf_addr` not null: every packet mbuf of a DPDK mempool).
    pub unsafe fn from_raw(p: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(p)
    }

    /// Gives up ownership without freeing.
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    #[inline(always)]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for our whole lifetime.
        unsafe { self.0.as_ref() }
    }

    #[inline(always)]
    fn raw_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: we own a valid mbuf and hold &mut self.
        unsafe { self.0.as_mut() }
    }

    /// Length of the first segment's data.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.raw().data_len as usize
    }

    /// Whether the first segment holds no data.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.raw().data_len == 0
    }

    /// Whether the whole packet is in one segment.
    #[inline(always)]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// Total packet length over all segments.
    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// The port the packet arrived on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// The RSS hash the NIC computed, if it set one.
    #[inline(always)]
    pub fn rss_hash(&self) -> u32 {
        // SAFETY: reading a plain u32 out of a union of plain integers.
        unsafe { self.raw().__bindgen_anon_2.hash.rss }
    }

    /// Bytes free before the data.
    #[inline(always)]
    pub fn headroom(&self) -> usize {
        self.raw().data_off as usize
    }

    /// Bytes free after the data in the first (only) segment.
    #[inline(always)]
    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        m.buf_len as usize - m.data_off as usize - m.data_len as usize
    }

    #[inline(always)]
    fn data_ptr(&self) -> *mut u8 {
        let m = self.raw();
        // SAFETY: every mbuf of a packet mempool has its buffer
        // (rte_pktmbuf_init sets buf_addr, attaching keeps one), and an
        // `Mbuf` is only made from those. Said so, the compiler drops the
        // null checks of the slices made from it.
        unsafe { std::hint::assert_unchecked(!m.buf_addr.is_null()) };
        // SAFETY: buf_addr + data_off stays inside the mbuf's buffer (DPDK
        // keeps data_off <= buf_len); this is rte_pktmbuf_mtod.
        unsafe { (m.buf_addr as *mut u8).add(m.data_off as usize) }
    }

    /// The packet bytes (first segment).
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        // SAFETY: data_len bytes from mtod are initialised packet data inside
        // the buffer, owned by us for the borrow's lifetime.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), self.len()) }
    }

    /// The packet bytes, writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        // SAFETY: as in `data`, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), len) }
    }

    /// Grows the packet at the front by `len` bytes (for an encapsulation
    /// header) and returns them; `None` if the headroom is too small.
    #[inline(always)]
    pub fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        let m = self.raw_mut();
        if len > m.data_off {
            return None;
        }
        m.data_off -= len;
        m.data_len += len;
        m.pkt_len += len as u32;
        let p = self.data_ptr();
        // SAFETY: the first `len` bytes from the new data start are inside the
        // buffer (they were headroom) and exclusively ours.
        Some(unsafe { std::slice::from_raw_parts_mut(p, len as usize) })
    }

    /// Removes `len` bytes from the front; `None` (and no change) if the first
    /// segment is shorter.
    #[inline(always)]
    pub fn adj(&mut self, len: u16) -> Option<()> {
        let m = self.raw_mut();
        if len > m.data_len {
            return None;
        }
        m.data_off += len;
        m.data_len -= len;
        m.pkt_len -= len as u32;
        Some(())
    }

    /// Grows a single-segment packet at the back by `len` bytes and returns
    /// them (uninitialised contents are whatever the buffer held).
    #[inline(always)]
    pub fn append(&mut self, len: u16) -> Option<&mut [u8]> {
        if !self.is_contiguous() || len as usize > self.tailroom() {
            return None;
        }
        let old = self.len();
        let m = self.raw_mut();
        m.data_len += len;
        m.pkt_len += len as u32;
        Some(&mut self.data_mut()[old..])
    }

    /// Shrinks a single-segment packet at the back by `len` bytes.
    #[inline(always)]
    pub fn trim(&mut self, len: u16) -> Option<()> {
        let m = self.raw_mut();
        if m.nb_segs != 1 || len > m.data_len {
            return None;
        }
        m.data_len -= len;
        m.pkt_len -= len as u32;
        Some(())
    }

    /// Raw pointer, for tests that compare against the C implementation.
    #[doc(hidden)]
    pub fn as_raw(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it goes back to its pool exactly once.
        unsafe { sys::dnlb_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Burst size used by the data plane.
pub const BURST_SIZE: usize = 32;

/// A fixed-capacity array of owned mbufs, laid out as DPDK's `rte_mbuf *[]`
/// so RX and TX bursts fill and drain it in place.
pub struct MbufBurst {
    len: usize,
    slots: [MaybeUninit<Mbuf>; BURST_SIZE],
}

impl fmt::Debug for MbufBurst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MbufBurst").field("len", &self.len).finish()
    }
}

impl Default for MbufBurst {
    fn default() -> Self {
        Self::new()
    }
}

impl MbufBurst {
    /// Capacity of every burst.
    pub const CAPACITY: usize = BURST_SIZE;

    /// An empty burst.
    pub fn new() -> Self {
        MbufBurst {
            len: 0,
            slots: [const { MaybeUninit::uninit() }; BURST_SIZE],
        }
    }

    /// Number of mbufs held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the burst is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether no more mbufs fit.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// The mbufs held.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots[..len] are initialised.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr() as *const Mbuf, self.len) }
    }

    /// The mbufs held, mutable.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: slots[..len] are initialised; &mut self is exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// Appends an mbuf; gives it back if the burst is full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST_SIZE {
            return Err(m);
        }
        self.slots[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes and returns the last mbuf.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside the live range.
        Some(unsafe { self.slots[self.len].assume_init_read() })
    }

    /// Takes all mbufs out, in order, leaving the burst empty.
    #[inline(always)]
    pub fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        let n = self.len;
        self.len = 0;
        // SAFETY: slots[..n] were initialised and are now outside the live
        // range, so each is read (moved out) exactly once.
        (0..n).map(move |i| unsafe { self.slots[i].assume_init_read() })
    }

    /// Frees every mbuf with one bulk call; returns how many.
    pub fn free_all(&mut self) -> usize {
        let n = self.len;
        if n > 0 {
            self.len = 0;
            // SAFETY: slots[..n] are n owned mbuf pointers (Mbuf is
            // repr(transparent) over NonNull<rte_mbuf>); after the call they
            // are outside the live range and never touched again.
            unsafe {
                sys::dnlb_pktmbuf_free_bulk(
                    self.slots.as_mut_ptr() as *mut *mut sys::rte_mbuf,
                    n as u32,
                )
            }
        }
        n
    }

    /// Pointer to the free slots after the live ones, and how many there are.
    #[inline(always)]
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut sys::rte_mbuf, u16) {
        // SAFETY: len <= BURST_SIZE, so the pointer is within or one past the array.
        let p = unsafe { self.slots.as_mut_ptr().add(self.len) } as *mut *mut sys::rte_mbuf;
        (p, (BURST_SIZE - self.len) as u16)
    }

    /// Marks `n` more slots (filled through `spare_raw`) as live.
    ///
    /// # Safety
    /// The `n` slots after the live ones must hold owned, valid mbufs.
    #[inline(always)]
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= BURST_SIZE);
        self.len += n;
    }

    /// Pointer to the live slots and their count, for a TX burst.
    #[inline(always)]
    pub(crate) fn live_raw(&mut self) -> (*mut *mut sys::rte_mbuf, u16) {
        (
            self.slots.as_mut_ptr() as *mut *mut sys::rte_mbuf,
            self.len as u16,
        )
    }

    /// Forgets the first `n` mbufs (their ownership went to DPDK) and moves
    /// the rest to the front.
    ///
    /// # Safety
    /// The first `n` live mbufs must no longer be owned by this burst.
    #[inline(always)]
    pub(crate) unsafe fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let rest = self.len - n;
        if rest > 0 && n > 0 {
            // SAFETY: both ranges lie within the array; copy handles overlap.
            unsafe { std::ptr::copy(self.slots.as_ptr().add(n), self.slots.as_mut_ptr(), rest) };
        }
        self.len = rest;
    }
}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// Mbufs are the data plane's packet buffers.
impl dnlb_wire::buf::PacketBuf for Mbuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline(always)]
    fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        Mbuf::prepend(self, len)
    }
    #[inline(always)]
    fn adj(&mut self, len: u16) -> Option<()> {
        Mbuf::adj(self, len)
    }
    #[inline(always)]
    fn trim(&mut self, len: u16) -> Option<()> {
        Mbuf::trim(self, len)
    }
    #[inline(always)]
    fn len(&self) -> usize {
        Mbuf::len(self)
    }
    #[inline(always)]
    fn is_contiguous(&self) -> bool {
        Mbuf::is_contiguous(self)
    }
}
