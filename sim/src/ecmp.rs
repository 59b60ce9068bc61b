//! The router in front of the gateways: ECMP over the gateways that announce
//! the VIP.

use dnlb_lb::hash::reduce;

use crate::rng::mix64;
use crate::scenario::EcmpMode;

/// Buckets of the resilient group.
const BUCKETS: u32 = 8192;

/// The router's next-hop group.
#[derive(Debug, Clone)]
pub struct Router {
    mode: EcmpMode,
    /// Announcing gateways, ascending.
    live: Vec<u16>,
    /// Resilient mode: bucket → gateway.
    buckets: Vec<u16>,
}

impl Router {
    /// A group in `mode`, empty.
    pub fn new(mode: EcmpMode) -> Router {
        Router {
            mode,
            live: Vec::new(),
            buckets: Vec::new(),
        }
    }

    /// Adds gateway `g` to the group.
    pub fn announce(&mut self, g: u16) {
        if let Err(i) = self.live.binary_search(&g) {
            self.live.insert(i, g);
            self.rebuild();
        }
    }

    /// Removes gateway `g` from the group.
    pub fn withdraw(&mut self, g: u16) {
        if let Ok(i) = self.live.binary_search(&g) {
            self.live.remove(i);
            self.rebuild();
        }
    }

    /// The announcing gateways.
    pub fn live(&self) -> &[u16] {
        &self.live
    }

    /// Resilient mode: each bucket goes to the gateway with the highest
    /// rendezvous score for it, so removing a gateway moves only its
    /// buckets and adding one moves only the buckets it wins.
    fn rebuild(&mut self) {
        if self.mode != EcmpMode::Resilient {
            return;
        }
        self.buckets = (0..BUCKETS)
            .map(|b| {
                self.live
                    .iter()
                    .copied()
                    .max_by_key(|&g| mix64(u64::from(b) << 32 | u64::from(g)))
                    .unwrap_or(0)
            })
            .collect();
    }

    /// The gateway a packet with router hash `h` goes to.
    #[inline]
    pub fn pick(&self, h: u64) -> Option<u16> {
        if self.live.is_empty() {
            return None;
        }
        Some(match self.mode {
            EcmpMode::Modulo => self.live[(h % self.live.len() as u64) as usize],
            EcmpMode::Resilient => self.buckets[reduce(h, BUCKETS) as usize],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(mode: EcmpMode, change: impl Fn(&mut Router)) -> f64 {
        let mut r = Router::new(mode);
        (0..16).for_each(|g| r.announce(g));
        let before: Vec<_> = (0..10_000u64).map(|i| r.pick(mix64(i))).collect();
        change(&mut r);
        let n = (0..10_000u64)
            .filter(|&i| r.pick(mix64(i)) != before[i as usize])
            .count();
        n as f64 / 10_000.0
    }

    #[test]
    fn resilient_moves_only_what_it_must() {
        // Losing one of 16: modulo moves ~15/16, resilient ~1/16.
        let m = moved(EcmpMode::Modulo, |r| r.withdraw(5));
        let r = moved(EcmpMode::Resilient, |r| r.withdraw(5));
        assert!(m > 0.8, "modulo moved {m}");
        assert!(r < 0.09 && r > 0.03, "resilient moved {r}");
        // And only gateway 5's flows move.
        let mut g = Router::new(EcmpMode::Resilient);
        (0..16).for_each(|x| g.announce(x));
        let before: Vec<_> = (0..10_000u64).map(|i| g.pick(mix64(i))).collect();
        g.withdraw(5);
        for i in 0..10_000u64 {
            if before[i as usize] != Some(5) {
                assert_eq!(g.pick(mix64(i)), before[i as usize]);
            }
        }
        let add = moved(EcmpMode::Resilient, |r| r.announce(16));
        assert!(add < 0.09, "adding moved {add}");
        assert_eq!(Router::new(EcmpMode::Modulo).pick(1), None);
    }
}
