//! Drain deadlines on the monotonic clock (the control thread's).

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use dnlb_config::Config;
use dnlb_lb::snapshot::to_monotonic;

/// Drain deadlines on the monotonic clock, each converted from its
/// wall-clock time once, when first seen: a step of the wall clock after
/// that neither ends a drain early nor stretches it.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    seen: HashMap<SystemTime, Instant>,
}

impl Deadlines {
    /// Converts the deadlines of `cfg` not seen before; forgets the ones it
    /// no longer has.
    pub(super) fn update(&mut self, cfg: &Config) {
        let (wall, mono) = (SystemTime::now(), Instant::now());
        let wanted: Vec<SystemTime> = cfg
            .target_groups
            .iter()
            .flat_map(|g| g.backends.iter().filter_map(|b| b.drain_until))
            .collect();
        self.seen.retain(|t, _| wanted.contains(t));
        for t in wanted {
            self.seen
                .entry(t)
                .or_insert_with(|| to_monotonic(t, wall, mono));
        }
    }

    /// Deadline `t` on the monotonic clock.
    pub(super) fn get(&self, t: SystemTime) -> Instant {
        self.seen
            .get(&t)
            .copied()
            .unwrap_or_else(|| to_monotonic(t, SystemTime::now(), Instant::now()))
    }
}
