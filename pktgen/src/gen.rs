//! The flow specification and the packet sequence it stands for.
//!
//! Established traffic walks a fixed set of flows — the product of the
//! source address, source port, destination address and destination port
//! ranges — round-robin (for TCP: ACK segments of established
//! connections). A share of the packets (`new_flow_fraction`; 1 = "every
//! packet a new flow") instead opens a new flow (for TCP: a SYN) from the
//! product of the *new-source* ranges and the destination ranges, walked so
//! that no tuple repeats before the whole product was used. Every
//! `stamp_every`-th packet carries a latency stamp.

use crate::frame::{headers_len, Kind, Proto, Template, TemplateSpec, Tuple, MAX_FRAME, MIN_FRAME};
use crate::range::{AddrRange, Odometer, PortRange};
use crate::stamp::{Stamp, STAMP_LEN};

/// Everything that decides which frames are sent.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    /// Source MAC of every frame.
    pub src_mac: [u8; 6],
    /// Destination MAC of every frame.
    pub dst_mac: [u8; 6],
    /// Transport protocol.
    pub proto: Proto,
    /// Source addresses of established flows.
    pub src_ip: AddrRange,
    /// Source ports of established flows.
    pub src_port: PortRange,
    /// Destination addresses (VIPs) of every flow.
    pub dst_ip: AddrRange,
    /// Destination ports of every flow.
    pub dst_port: PortRange,
    /// Source addresses of new flows.
    pub new_src_ip: AddrRange,
    /// Source ports of new flows.
    pub new_src_port: PortRange,
    /// Frame length without FCS, 60..=1514.
    pub frame_len: usize,
    /// Share of packets that open a new flow, 0.0..=1.0.
    pub new_flow_fraction: f64,
    /// Stamp every N-th packet for latency (0: never).
    pub stamp_every: u64,
    /// Stop stamping after this many stamps (the receiver's sample room).
    pub max_stamps: u32,
}

/// What is wrong with a [`FlowSpec`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// Addresses of both families in one spec.
    #[error("all address ranges must be of one family (IPv4 or IPv6): {0}")]
    MixedFamilies(String),
    /// The frame length is out of range.
    #[error(
        "frame length {len} is outside {min}..={max} (the headers of {what} take {headers} bytes)"
    )]
    FrameLength {
        /// The asked length.
        len: usize,
        /// The shortest possible.
        min: usize,
        /// The longest possible.
        max: usize,
        /// Headers' length.
        headers: usize,
        /// IP version and transport.
        what: &'static str,
    },
    /// The new-flow fraction is not within 0..=1.
    #[error("the new-flow fraction {0} is not between 0 and 1")]
    Fraction(f64),
}

impl FlowSpec {
    /// Whether the flows are IPv6.
    pub fn is_v6(&self) -> bool {
        self.dst_ip.is_v6()
    }

    /// Checks the spec; [`Generator::new`] calls it.
    pub fn validate(&self) -> Result<(), SpecError> {
        let v6 = self.is_v6();
        for (name, r) in [
            ("source", &self.src_ip),
            ("new-flow source", &self.new_src_ip),
        ] {
            if r.is_v6() != v6 {
                return Err(SpecError::MixedFamilies(format!(
                    "the {name} range {r} and the destination range {}",
                    self.dst_ip
                )));
            }
        }
        let headers = headers_len(v6, self.proto);
        let min = headers.max(MIN_FRAME);
        if !(min..=MAX_FRAME).contains(&self.frame_len) {
            return Err(SpecError::FrameLength {
                len: self.frame_len,
                min,
                max: MAX_FRAME,
                headers,
                what: match (v6, self.proto) {
                    (false, Proto::Udp) => "IPv4/UDP",
                    (false, Proto::Tcp) => "IPv4/TCP",
                    (true, Proto::Udp) => "IPv6/UDP",
                    (true, Proto::Tcp) => "IPv6/TCP",
                },
            });
        }
        if !(0.0..=1.0).contains(&self.new_flow_fraction) {
            return Err(SpecError::Fraction(self.new_flow_fraction));
        }
        Ok(())
    }

    /// Length of stamped frames: the frame length, or longer when the
    /// payload has no room for a stamp (e.g. 60-byte IPv4/TCP frames carry
    /// 6 payload bytes; their stamped ones are 70 bytes).
    pub fn stamped_len(&self) -> usize {
        self.frame_len
            .max(headers_len(self.is_v6(), self.proto) + STAMP_LEN)
    }

    /// Number of established flows.
    pub fn flows(&self) -> u128 {
        u128::from(self.src_ip.count())
            * u128::from(self.src_port.count())
            * u128::from(self.dst_ip.count())
            * u128::from(self.dst_port.count())
    }

    /// Number of distinct new-flow tuples before they repeat.
    pub fn new_flow_tuples(&self) -> u128 {
        u128::from(self.new_src_ip.count())
            * u128::from(self.new_src_port.count())
            * u128::from(self.dst_ip.count())
            * u128::from(self.dst_port.count())
    }
}

/// One in 2^32: the unit of the new-flow share.
const SHARE_ONE: u64 = 1 << 32;

/// The packet sequence of a [`FlowSpec`]. No allocation after `new`.
#[derive(Debug, Clone)]
pub struct Generator {
    /// Indexed by `[new flow][stamped]`.
    templates: [[Template; 2]; 2],
    ranges: [(AddrRange, PortRange); 2],
    dst: (AddrRange, PortRange),
    flows: [Odometer; 2],
    share: u64,
    acc: u64,
    stamp_every: u64,
    until_stamp: u64,
    next_seq: u32,
    max_stamps: u32,
    new_flow_packets: u64,
}

/// The next packet: which template, tuple and stamp.
#[derive(Debug, Clone, Copy)]
pub struct Next<'g> {
    template: &'g Template,
    /// The packet's addresses and ports.
    pub tuple: Tuple,
    /// The packet's stamp, if it carries one.
    pub stamp: Option<Stamp>,
    /// Whether the packet opens a new flow.
    pub new_flow: bool,
}

impl Next<'_> {
    /// The frame's length.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.template.len()
    }

    /// Whether the frame is empty (never).
    pub fn is_empty(&self) -> bool {
        self.template.is_empty()
    }

    /// Writes the frame into `buf` (exactly [`Next::len`] bytes).
    #[inline(always)]
    pub fn write(&self, buf: &mut [u8]) {
        self.template.write(buf, &self.tuple, self.stamp);
    }
}

impl Generator {
    /// Validates `spec` and builds its templates.
    pub fn new(spec: &FlowSpec) -> Result<Generator, SpecError> {
        spec.validate()?;
        let t = |kind, stamped| {
            Template::new(&TemplateSpec {
                src_mac: spec.src_mac,
                dst_mac: spec.dst_mac,
                v6: spec.is_v6(),
                proto: spec.proto,
                kind,
                frame_len: if stamped {
                    spec.stamped_len()
                } else {
                    spec.frame_len
                },
                stamped,
            })
        };
        let odometer = |src: &AddrRange, sport: &PortRange| {
            Odometer::new([
                src.count(),
                sport.count(),
                spec.dst_ip.count(),
                spec.dst_port.count(),
            ])
        };
        Ok(Generator {
            templates: [
                [t(Kind::Established, false), t(Kind::Established, true)],
                [t(Kind::NewFlow, false), t(Kind::NewFlow, true)],
            ],
            ranges: [
                (spec.src_ip, spec.src_port),
                (spec.new_src_ip, spec.new_src_port),
            ],
            dst: (spec.dst_ip, spec.dst_port),
            flows: [
                odometer(&spec.src_ip, &spec.src_port),
                odometer(&spec.new_src_ip, &spec.new_src_port),
            ],
            share: (spec.new_flow_fraction * SHARE_ONE as f64).round() as u64,
            // Half a unit to start with: the count after n packets is
            // n * fraction rounded, not truncated.
            acc: SHARE_ONE / 2,
            stamp_every: spec.stamp_every,
            until_stamp: 0,
            next_seq: 0,
            max_stamps: spec.max_stamps,
            new_flow_packets: 0,
        })
    }

    /// The next packet; `tsc` goes into its stamp if it carries one.
    #[inline(always)]
    pub fn next(&mut self, tsc: u64) -> Next<'_> {
        // Bresenham over the share: round(n * fraction) of the first n
        // packets open flows, evenly spaced.
        self.acc += self.share;
        let new_flow = self.acc >= SHARE_ONE;
        if new_flow {
            self.acc -= SHARE_ONE;
            self.new_flow_packets += 1;
        }
        let k = usize::from(new_flow);
        let [i_src, i_sport, i_dst, i_dport] = self.flows[k].get();
        self.flows[k].step();
        let (src, sport) = &self.ranges[k];
        let tuple = Tuple {
            src: src.nth_bits(i_src),
            sport: sport.nth(i_sport),
            dst: self.dst.0.nth_bits(i_dst),
            dport: self.dst.1.nth(i_dport),
        };
        let stamp = self.take_stamp(tsc);
        Next {
            template: &self.templates[k][usize::from(stamp.is_some())],
            tuple,
            stamp,
            new_flow,
        }
    }

    #[inline(always)]
    fn take_stamp(&mut self, tsc: u64) -> Option<Stamp> {
        if self.stamp_every == 0 || self.next_seq >= self.max_stamps {
            return None;
        }
        if self.until_stamp > 0 {
            self.until_stamp -= 1;
            return None;
        }
        self.until_stamp = self.stamp_every - 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        Some(Stamp { seq, tsc })
    }

    /// Stamps handed out so far (their sequence numbers are `0..stamps()`).
    pub fn stamps(&self) -> u32 {
        self.next_seq
    }

    /// Packets that opened a new flow so far.
    pub fn new_flow_packets(&self) -> u64 {
        self.new_flow_packets
    }

    /// How many times the new-flow tuples were all used and started over.
    pub fn new_flow_wraps(&self) -> u64 {
        self.flows[1].wraps()
    }
}
