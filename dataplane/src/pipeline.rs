//! What a worker does to each packet. The load-balancing pipeline plugs in
//! here; until then [`ForwardPipeline`] forwards frames between ports as
//! configured (like `testpmd --forward-mode=io`).

use crate::counters::DropReason;
use dnlb_wire::buf::PacketBuf;

use crate::io::{PortIndex, BURST};

/// The decision for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (possibly rewritten) packet out of this port.
    Forward(PortIndex),
    /// Free the packet and count it under this reason.
    Drop(DropReason),
}

/// How the verdicts of a burst are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurstVerdict {
    /// Every packet of the burst gets this verdict (`verdicts` is unused).
    Uniform(Verdict),
    /// `verdicts[i]` is packet `i`'s verdict.
    PerPacket,
}

/// Per-burst packet processing. Pure: no I/O; the worker does RX and TX.
pub trait Pipeline {
    /// Decides (and may rewrite) each packet of `pkts` (at least one),
    /// received on `port`: either one verdict for the whole burst, or one per
    /// packet in `verdicts[..pkts.len()]`.
    fn process<P: PacketBuf>(
        &mut self,
        port: PortIndex,
        pkts: &mut [P],
        verdicts: &mut [Verdict; BURST],
    ) -> BurstVerdict;

    /// Called once on the worker's thread before its first poll (one-time
    /// set-up that must not happen on the packet path).
    #[inline]
    fn on_start(&mut self) {}

    /// Called at the start of each worker loop iteration with the
    /// time-stamp counter the worker read at the end of the previous one
    /// (or after waking up): the iteration's time, without reading the
    /// counter again.
    #[inline]
    fn on_iteration(&mut self, tsc: u64) {
        let _ = tsc;
    }

    /// Called once per worker loop iteration, with or without packets
    /// (publish state on request; keep it cheap).
    #[inline]
    fn on_poll(&mut self) {}

    /// Called once when the worker stops.
    fn on_stop(&mut self) {}
}

/// Forwards everything received on port `i` to port `to[i]`, unmodified;
/// where `to[i]` is `None`, frames are dropped as not for a VIP (this
/// pipeline knows no VIPs).
#[derive(Debug, Clone)]
pub struct ForwardPipeline {
    to: Vec<Option<PortIndex>>,
}

impl ForwardPipeline {
    /// `to[i]` is where frames from port `i` go.
    pub fn new(to: Vec<Option<PortIndex>>) -> Self {
        ForwardPipeline { to }
    }
}

impl Pipeline for ForwardPipeline {
    #[inline]
    fn process<P: PacketBuf>(
        &mut self,
        port: PortIndex,
        _pkts: &mut [P],
        _verdicts: &mut [Verdict; BURST],
    ) -> BurstVerdict {
        BurstVerdict::Uniform(match self.to[port.get()] {
            Some(out) => Verdict::Forward(out),
            None => Verdict::Drop(DropReason::NotForVip),
        })
    }
}
