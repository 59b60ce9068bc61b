//! The one in-memory packet of dnlb's tests, fixtures and benchmarks: a
//! `Vec` with headroom implementing [`PacketBuf`], the buffer trait DPDK
//! mbufs implement in production.

use dnlb_wire::buf::PacketBuf;

/// A packet in a `Vec` with headroom, for tests and fixtures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecPacket {
    buf: Vec<u8>,
    start: usize,
}

impl VecPacket {
    /// Headroom of new packets (DPDK's default).
    pub const HEADROOM: usize = 128;

    /// A packet holding a copy of `bytes` after [`Self::HEADROOM`] bytes.
    pub fn new(bytes: &[u8]) -> Self {
        Self::with_headroom(bytes, Self::HEADROOM)
    }

    /// A packet holding a copy of `bytes` after `headroom` bytes.
    pub fn with_headroom(bytes: &[u8], headroom: usize) -> Self {
        let mut buf = vec![0; headroom + bytes.len()];
        buf[headroom..].copy_from_slice(bytes);
        VecPacket {
            buf,
            start: headroom,
        }
    }

    /// Refills the packet with `bytes` after [`Self::HEADROOM`] bytes of
    /// headroom, reusing its allocation (benchmarks restore packets this way).
    pub fn reset(&mut self, bytes: &[u8]) {
        self.buf.clear();
        self.buf.resize(Self::HEADROOM, 0);
        self.buf.extend_from_slice(bytes);
        self.start = Self::HEADROOM;
    }

    /// The bytes, consuming the packet.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.buf.drain(..self.start);
        self.buf
    }
}

impl PacketBuf for VecPacket {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }
    #[inline]
    fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        let len = len as usize;
        if len > self.start {
            return None;
        }
        self.start -= len;
        Some(&mut self.buf[self.start..self.start + len])
    }
    #[inline]
    fn adj(&mut self, len: u16) -> Option<()> {
        if len as usize > self.buf.len() - self.start {
            return None;
        }
        self.start += len as usize;
        Some(())
    }
    #[inline]
    fn trim(&mut self, len: u16) -> Option<()> {
        if len as usize > self.buf.len() - self.start {
            return None;
        }
        self.buf.truncate(self.buf.len() - len as usize);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_arithmetic() {
        let mut p = VecPacket::with_headroom(&[1, 2, 3, 4], 4);
        assert!(p.prepend(5).is_none());
        p.prepend(2).unwrap().copy_from_slice(&[8, 9]);
        assert_eq!(p.data(), &[8, 9, 1, 2, 3, 4]);
        p.adj(3).unwrap();
        p.trim(1).unwrap();
        assert_eq!(p.data(), &[2, 3]);
        assert!(p.adj(3).is_none() && p.trim(3).is_none());
        assert_eq!(p.clone().into_bytes(), vec![2, 3]);
    }
}
