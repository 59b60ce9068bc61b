//! Test doubles for the data plane (built for its own tests and, with the
//! `testing` feature, for other crates' tests and benchmarks): in-memory
//! packet I/O — per-port RX and TX queues of [`VecPacket`]s, with an optional
//! TX capacity to exercise refusal — and a clock moved by hand.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use dnlb_testkit::VecPacket;

use crate::clock::Clock;
use crate::io::{Burst, PacketIo, PortIndex, BURST};

/// A burst of in-memory packets.
#[derive(Debug, Default)]
pub struct MemBurst {
    pkts: Vec<VecPacket>,
}

impl Burst for MemBurst {
    type Packet = VecPacket;
    #[inline]
    fn len(&self) -> usize {
        self.pkts.len()
    }
    #[inline]
    fn as_mut_slice(&mut self) -> &mut [VecPacket] {
        &mut self.pkts
    }
    #[inline]
    fn push(&mut self, p: VecPacket) -> Result<(), VecPacket> {
        if self.pkts.len() >= BURST {
            return Err(p);
        }
        self.pkts.push(p);
        Ok(())
    }
    fn drain(&mut self) -> impl Iterator<Item = VecPacket> + '_ {
        self.pkts.drain(..)
    }
    fn free_all(&mut self) -> usize {
        let n = self.pkts.len();
        self.pkts.clear();
        n
    }
}

/// In-memory ports: tests push frames into RX queues and read TX queues.
#[derive(Debug)]
pub struct MemIo {
    rx: Vec<VecDeque<VecPacket>>,
    tx: Vec<Vec<VecPacket>>,
    tx_capacity: Vec<usize>,
}

impl MemIo {
    /// `ports` ports with empty queues and unlimited TX.
    pub fn new(ports: usize) -> Self {
        MemIo {
            rx: (0..ports).map(|_| VecDeque::new()).collect(),
            tx: (0..ports).map(|_| Vec::new()).collect(),
            tx_capacity: vec![usize::MAX; ports],
        }
    }

    /// Queues a frame for reception on `port`.
    pub fn inject(&mut self, port: PortIndex, frame: &[u8]) {
        self.rx[port.get()].push_back(VecPacket::new(frame));
    }

    /// Frames still waiting on `port`'s RX queue.
    pub fn rx_pending(&self, port: PortIndex) -> usize {
        self.rx[port.get()].len()
    }

    /// Takes the frames transmitted on `port` so far.
    pub fn take_tx(&mut self, port: PortIndex) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.tx[port.get()])
            .into_iter()
            .map(VecPacket::into_bytes)
            .collect()
    }

    /// Limits how many frames `port`'s TX queue holds (then refuses).
    pub fn set_tx_capacity(&mut self, port: PortIndex, cap: usize) {
        self.tx_capacity[port.get()] = cap;
    }
}

impl PacketIo for MemIo {
    type Burst = MemBurst;

    fn port_count(&self) -> usize {
        self.rx.len()
    }

    fn rx(&mut self, port: PortIndex, burst: &mut MemBurst) -> usize {
        let q = &mut self.rx[port.get()];
        let n = (BURST - burst.len()).min(q.len());
        burst.pkts.extend(q.drain(..n));
        n
    }

    fn tx(&mut self, port: PortIndex, burst: &mut MemBurst) -> usize {
        let q = &mut self.tx[port.get()];
        let room = self.tx_capacity[port.get()].saturating_sub(q.len());
        let n = room.min(burst.pkts.len());
        q.extend(burst.pkts.drain(..n));
        n
    }
}

/// A clock tests move by hand.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(pub Arc<AtomicU32>);

impl Clock for ManualClock {
    fn now_ms(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}
