//! What the gateway limits, as workers apply it: each worker's share of the
//! gateway-wide rates (`[protection]`, `[listener.limits]`), built with the
//! snapshot, and a worker's limiter state ([`Limiters`]), sized once and
//! never allocated on the packet path.

use dnlb_model::{Config, FlowLimits};

use crate::ratelimit::{Pace, WideClock};

/// Classes of the exception path (frames for the host's own stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HostClass {
    /// BGP (TCP port 179) and BFD (UDP 3784, 3785, 4784).
    Routing = 0,
    /// ARP, IPv6 neighbour discovery and router messages.
    Neighbor,
    /// From a backend's address (health-check answers).
    Backends,
    /// Everything else.
    Other,
}

impl HostClass {
    /// Number of classes.
    pub const COUNT: usize = 4;
    /// All classes, in counter order.
    pub const ALL: [HostClass; Self::COUNT] = [
        HostClass::Routing,
        HostClass::Neighbor,
        HostClass::Backends,
        HostClass::Other,
    ];

    /// Metric label.
    pub fn name(self) -> &'static str {
        match self {
            HostClass::Routing => "routing",
            HostClass::Neighbor => "neighbor",
            HostClass::Backends => "backends",
            HostClass::Other => "other",
        }
    }
}

/// One worker's share of the gateway-wide rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayLimits {
    /// "Too big" answers (`encap.icmp_rate_per_sec`, already per worker).
    pub too_big: Pace,
    /// Echo replies.
    pub echo: Pace,
    /// ICMP errors forwarded to backends.
    pub icmp_forward: Pace,
    /// The exception path, by [`HostClass`].
    pub host: [Pace; HostClass::COUNT],
}

impl GatewayLimits {
    /// A worker's share of `cfg`'s rates.
    pub fn of(cfg: &Config) -> Self {
        let w = workers(cfg);
        let p = &cfg.protection;
        let h = &p.host;
        let host = [h.routing, h.neighbor, h.backends, h.other];
        let icmp = cfg.encap.icmp_rate_per_sec;
        GatewayLimits {
            too_big: Pace::new(icmp, icmp),
            echo: Pace::share(p.echo_replies, w),
            icmp_forward: Pace::share(p.icmp_errors_forwarded, w),
            host: host.map(|r| Pace::share(r, w)),
        }
    }
}

/// One worker's share of a listener's new-flow limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerLimits {
    /// The whole listener.
    pub listener: Option<Pace>,
    /// Each source.
    pub source: Option<Pace>,
}

impl ListenerLimits {
    /// A worker's share of `l` on a gateway with `cfg`'s workers.
    pub fn of(l: &FlowLimits, cfg: &Config) -> Self {
        let w = workers(cfg);
        ListenerLimits {
            listener: l.listener.map(|r| Pace::share(r, w)),
            source: l.source.map(|r| Pace::share(r, w)),
        }
    }

    /// Whether any limit is set.
    #[inline(always)]
    pub fn any(&self) -> bool {
        self.listener.is_some() || self.source.is_some()
    }
}

/// Workers sharing the gateway's rates.
fn workers(cfg: &Config) -> usize {
    cfg.dataplane.worker_lcores.len().max(1)
}

/// Hashed per-source limiters per worker (shared by all listeners): 2^16,
/// 512 KiB of state.
pub const SOURCE_BUCKETS: usize = 1 << SOURCE_BITS;
const SOURCE_BITS: u32 = 16;

/// A worker's limiter state: one `u64` per limiter (see [`Pace`]).
#[derive(Debug, Clone)]
pub struct Limiters {
    /// The clock limiters run on.
    pub clock: WideClock,
    /// "Too big" answers.
    pub too_big: u64,
    /// Echo replies.
    pub echo: u64,
    /// ICMP errors forwarded.
    pub icmp_forward: u64,
    /// Per listener counter slot.
    pub listeners: Vec<u64>,
    /// Hashed by (listener slot, source).
    pub sources: Box<[u64; SOURCE_BUCKETS]>,
    /// The exception path, by [`HostClass`].
    pub host: [u64; HostClass::COUNT],
}

impl Limiters {
    /// Fresh limiters with room for `slots` listener slots (slow path).
    pub fn new(slots: usize) -> Self {
        Limiters {
            clock: WideClock::default(),
            too_big: 0,
            echo: 0,
            icmp_forward: 0,
            listeners: vec![0; slots],
            sources: vec![0; SOURCE_BUCKETS]
                .into_boxed_slice()
                .try_into()
                .expect("SOURCE_BUCKETS long"),
            host: [0; HostClass::COUNT],
        }
    }

    /// The per-source limiter of (listener `slot`, source `src` folded to
    /// 64 bits), hashed with the worker's secret `seed` (multiply-shift:
    /// without the seed no one can aim sources at a chosen limiter).
    #[inline(always)]
    pub fn source(&mut self, seed: u64, slot: u16, src: u64) -> &mut u64 {
        let k = (src ^ seed).wrapping_add(u64::from(slot) << 48);
        let i = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15 | 1) >> (64 - SOURCE_BITS)) as usize;
        &mut self.sources[i]
    }
}
