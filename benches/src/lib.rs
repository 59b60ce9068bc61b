//! Support for dnlb's benchmarks.
//!
//! [`LoopIo`] is a [`PacketIo`] that hands the same preallocated packets
//! round and round without allocating, so a criterion bench measures the
//! worker loop and pipeline, not the allocator.

#![forbid(unsafe_code)]

use dnlb_dataplane::testing::MemBurst;
use dnlb_dataplane::{Burst, PacketIo, PortIndex, BURST};
use dnlb_testkit::VecPacket as MemPacket;

/// Packet I/O that receives from a fixed set of packets and recycles what
/// is transmitted back into it.
#[derive(Debug)]
pub struct LoopIo {
    ports: usize,
    free: Vec<MemPacket>,
    /// Packets transmitted so far.
    pub transmitted: u64,
    /// Frames each received packet is reset to, in turn (as a PMD copies
    /// a frame into each buffer), and the next one's index.
    replay: Option<(Vec<Vec<u8>>, usize)>,
}

impl LoopIo {
    /// `ports` ports that receive copies of `frames` (cycled) forever.
    pub fn new(ports: usize, frames: &[Vec<u8>], in_flight: usize) -> Self {
        let free = (0..in_flight.max(BURST))
            .map(|i| MemPacket::new(&frames[i % frames.len()]))
            .collect();
        LoopIo {
            ports,
            free,
            transmitted: 0,
            replay: None,
        }
    }

    /// [`LoopIo::new`], but every received packet is first reset to the
    /// next of `frames` (cycled), so a pipeline that rewrites packets
    /// (encapsulation) sees fresh frames, at the cost of one copy each.
    pub fn replaying(ports: usize, frames: &[Vec<u8>], in_flight: usize) -> Self {
        let mut io = LoopIo::new(ports, frames, in_flight);
        io.replay = Some((frames.to_vec(), 0));
        io
    }
}

impl PacketIo for LoopIo {
    type Burst = MemBurst;

    fn port_count(&self) -> usize {
        self.ports
    }

    #[inline]
    fn rx(&mut self, _port: PortIndex, burst: &mut MemBurst) -> usize {
        let mut n = 0;
        while !burst.is_full() {
            match self.free.pop() {
                Some(mut p) => {
                    if let Some((frames, next)) = &mut self.replay {
                        p.reset(&frames[*next]);
                        *next = (*next + 1) % frames.len();
                    }
                    let _ = burst.push(p);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    #[inline]
    fn tx(&mut self, _port: PortIndex, burst: &mut MemBurst) -> usize {
        let n = burst.len();
        self.free.extend(burst.drain());
        self.transmitted += n as u64;
        n
    }
}
