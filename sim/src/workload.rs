//! Connections: their 5-tuples, hashes, arrivals, lifetimes and packets.
//!
//! Connection `i` (numbered in arrival order) is a TCP connection from
//! `100.64.0.0/10` to the VIP `198.51.100.10:443`; its tuple is a function of
//! `i`, so nothing but a little state is stored per connection. Packets are
//! sampled: the SYN, the handshake's first ACK one round trip later, then one
//! packet per gap (exponential, mean `gap_mean_ms`) and a FIN at the end of
//! the connection's life. Every sampled packet goes through the router and a
//! gateway; the packets in between would take the same path.

use dnlb_lb::flow_table::fingerprint_v4;
use dnlb_lb::hash::flow_hash_v4;

use crate::rng::{draw, exp, unit};
use crate::scenario::Workload;

/// The VIP every connection goes to.
pub const VIP: [u8; 4] = [198, 51, 100, 10];
/// The VIP's port.
pub const VIP_PORT: u16 = 443;
/// TCP.
pub const PROTO: u8 = 6;
/// The router's hash seed (the router hashes the 5-tuple with its own key).
const ROUTER_SEED: u64 = 0x524f_5554_4552_5f31;

/// Client address and port of connection `i`.
#[inline]
pub fn client(i: u32) -> ([u8; 4], u16) {
    let a = 0x6440_0000u32 + (i >> 6);
    (a.to_be_bytes(), 32768 + (i & 63) as u16)
}

/// The flow hash the gateways' Maglev tables are indexed with (the real
/// `lb::hash::flow_hash_v4`).
#[inline]
pub fn maglev_hash(i: u32) -> u64 {
    let (src, sport) = client(i);
    flow_hash_v4(src, VIP, PROTO, sport, VIP_PORT)
}

/// The router's ECMP hash of connection `i` (a keyed hash of the 5-tuple:
/// `lb`'s fingerprint construction with the router's own key).
#[inline]
pub fn router_hash(i: u32) -> u64 {
    let (src, sport) = client(i);
    fingerprint_v4(ROUTER_SEED, src, VIP, PROTO, sport, VIP_PORT)
}

/// Gateway flow-table fingerprint of connection `i` under `seed` (each
/// gateway has its own seed, as each dnlb worker does).
#[inline]
pub fn fingerprint(seed: u64, i: u32) -> u64 {
    let (src, sport) = client(i);
    fingerprint_v4(seed, src, VIP, PROTO, sport, VIP_PORT)
}

/// Random word indices per connection.
const K_CLASS: u32 = 0;
const K_LIFE: u32 = 1;
const K_RTT: u32 = 2;
/// Packet `n`'s gap uses word `K_GAP + n`.
const K_GAP: u32 = 3;

/// The shape of connection `i` drawn from the workload.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Lifetime in ms (≥ the round trip + 1).
    pub life_ms: u32,
    /// The handshake's round trip in ms.
    pub rtt_ms: u32,
}

/// Connection `i`'s lifetime and round trip.
pub fn shape(w: &Workload, seed: u64, i: u32) -> Shape {
    let long = unit(draw(seed, i, K_CLASS)) < w.long_fraction;
    let mean_s = if long { w.long_mean_s } else { w.short_mean_s };
    let rtt_ms = 1 + (unit(draw(seed, i, K_RTT)) * 2.0 * f64::from(w.rtt_ms)) as u32;
    let life = (exp(draw(seed, i, K_LIFE), mean_s * 1000.0) as u64).min(u64::from(u32::MAX / 4));
    Shape {
        life_ms: (life as u32).max(rtt_ms + 1),
        rtt_ms,
    }
}

/// The gap in ms before packet `n + 1` (n ≥ 1) of connection `i`: at least
/// 1 ms, at most the idle timeout's half (a flow never idles out while it
/// lives).
pub fn gap_ms(w: &Workload, seed: u64, i: u32, n: u32) -> u32 {
    let g = exp(draw(seed, i, K_GAP + n), w.gap_mean_ms) as u64;
    g.clamp(1, u64::from(w.gap_max_ms())) as u32
}

/// Arrival times: a Poisson process of `connections` over the window,
/// generated in order.
#[derive(Debug, Clone)]
pub struct Arrivals {
    seed: u64,
    mean_gap_ms: f64,
    t: f64,
    next: u32,
    total: u32,
}

impl Arrivals {
    /// The arrivals of `w`.
    pub fn new(w: &Workload, seed: u64) -> Arrivals {
        let window_ms = w.arrival_window_s * 1000.0;
        Arrivals {
            seed: seed ^ 0x4152_5249_5641_4c53,
            mean_gap_ms: window_ms / f64::from(w.connections.max(1)),
            t: 0.0,
            next: 0,
            total: w.connections,
        }
    }

    /// The next connection's number and arrival time, without taking it.
    pub fn peek(&self) -> Option<(u32, u32)> {
        (self.next < self.total).then_some((self.next, self.t as u32))
    }

    /// Takes the next arrival.
    pub fn advance(&mut self) {
        self.next += 1;
        self.t += exp(draw(self.seed, self.next, 0), self.mean_gap_ms);
    }

    /// How many connections have arrived.
    pub fn arrived(&self) -> u32 {
        self.next
    }
}
