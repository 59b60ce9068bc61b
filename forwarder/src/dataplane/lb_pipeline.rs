//! The load-balancing pipeline: each packet goes through the per-worker
//! [`Processor`] against the current snapshot (see [`super::snapshot`]); encapsulated packets and
//! replies leave by the port they came in on (one-armed), frames not for a
//! VIP go to the port's `forward_to` or the host port, frames from the host
//! port go out unprocessed.

use dnlb_lb::packet::PacketBuf;
use dnlb_lb::processor::Processor;
use dnlb_lb::verdict::{Action, DropReason};

use super::clock::Clock;
use super::io::{Packet, PortIndex, BURST};
use super::pipeline::{BurstVerdict, Pipeline, Verdict};
use super::snapshot::Reader;

/// Lets the logic work on any data-plane packet.
struct Buf<'a, P>(&'a mut P);

impl<P: Packet> PacketBuf for Buf<'_, P> {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    #[inline(always)]
    fn prepend(&mut self, len: u16) -> Option<&mut [u8]> {
        self.0.prepend(len)
    }
    #[inline(always)]
    fn adj(&mut self, len: u16) -> Option<()> {
        self.0.adj(len)
    }
    #[inline(always)]
    fn trim(&mut self, len: u16) -> Option<()> {
        self.0.trim(len)
    }
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Per-port routing the pipeline needs.
#[derive(Debug, Clone)]
pub struct PortPlan {
    /// MAC address of each port (source MAC of what leaves by it).
    pub macs: Vec<[u8; 6]>,
    /// Where frames not for a VIP go, per ingress port.
    pub non_vip: Vec<Option<PortIndex>>,
    /// The exception-path port.
    pub host_port: Option<PortIndex>,
}

/// The pipeline one worker runs.
#[derive(Debug)]
pub struct LbPipeline<C: Clock> {
    processor: Processor,
    snapshot: Reader,
    ports: PortPlan,
    clock: C,
}

impl<C: Clock> LbPipeline<C> {
    /// A pipeline reading published snapshots through `snapshot`.
    pub fn new(mut processor: Processor, snapshot: Reader, ports: PortPlan, clock: C) -> Self {
        processor.adopt(snapshot.get());
        LbPipeline {
            processor,
            snapshot,
            ports,
            clock,
        }
    }

    /// The snapshot generation in use.
    pub fn generation(&self) -> u64 {
        self.snapshot.generation()
    }

    /// The processor (counters, flow table).
    pub fn processor(&mut self) -> &mut Processor {
        &mut self.processor
    }
}

impl<C: Clock> Pipeline for LbPipeline<C> {
    #[inline]
    fn process<P: Packet>(
        &mut self,
        port: PortIndex,
        pkts: &mut [P],
        verdicts: &mut [Verdict; BURST],
    ) -> BurstVerdict {
        let non_vip = self.ports.non_vip[port.get()];
        if self.ports.host_port == Some(port) {
            return BurstVerdict::Uniform(match non_vip {
                Some(o) => Verdict::Forward(o),
                None => Verdict::Drop(DropReason::NotForVip),
            });
        }
        // Quiescent point: between bursts a newly published snapshot is taken
        // (one atomic load when there is none).
        if self.snapshot.refresh() {
            self.processor.adopt(self.snapshot.get());
        }
        let now = self.clock.now_ms();
        let mac = self.ports.macs[port.get()];
        let snap = self.snapshot.get();
        // Two passes: start every flow-table load of the burst, then decide.
        for p in pkts.iter_mut() {
            self.processor.prepare(&Buf(p));
        }
        for (p, v) in pkts.iter_mut().zip(verdicts.iter_mut()) {
            *v = match self.processor.process(snap, &mut Buf(p), mac, now) {
                Action::Encapsulated(_) | Action::Reply => Verdict::Forward(port),
                Action::NotForVip => match non_vip {
                    Some(o) => Verdict::Forward(o),
                    None => Verdict::Drop(DropReason::NotForVip),
                },
                Action::Drop(r) => Verdict::Drop(r),
            };
        }
        BurstVerdict::PerPacket
    }
}
