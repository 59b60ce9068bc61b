//! A backend's health: a threshold state machine driven by probe results,
//! pure (no clock: whether the start-up grace still runs is passed in).
//!
//! A backend the gateway knows nothing about yet (at its start, or when its
//! group gains a health check) is *presumed* healthy: it serves at once,
//! but its first failed probe takes it down, as HAProxy's servers start
//! "up, one check away from down". Only a backend a probe has confirmed
//! needs `unhealthy_threshold` failures in a row: a gateway restarted while
//! a backend is dead drops it within one probe, where its peers dropped it
//! long ago, instead of sending it new flows for the thresholds' time.

use dnlb_config::HealthCheck;

/// Health of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthState {
    healthy: bool,
    /// Healthy without a probe's word yet: the first failure counts as
    /// the threshold's worth.
    presumed: bool,
    /// Consecutive results disagreeing with `healthy`.
    streak: u8,
}

impl Default for HealthState {
    /// Presumed healthy: a backend at the gateway's start, or in a group
    /// that just gained its health check, serves at once, until its first
    /// failed probe.
    fn default() -> Self {
        HealthState {
            healthy: true,
            presumed: true,
            streak: 0,
        }
    }
}

impl HealthState {
    /// A backend added to a checked group at run time: it takes no new
    /// flows until `healthy_threshold` probes in a row pass.
    pub fn initial() -> Self {
        HealthState {
            healthy: false,
            presumed: false,
            streak: 0,
        }
    }

    /// Whether the backend counts as healthy.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Whether it counts as healthy only because no probe has said
    /// otherwise yet.
    pub fn presumed(&self) -> bool {
        self.presumed
    }

    /// Records one probe result; returns true when the state flipped.
    pub fn record(&mut self, ok: bool, check: &HealthCheck) -> bool {
        if std::mem::take(&mut self.presumed) && !ok {
            self.healthy = false;
            self.streak = 0;
            return true;
        }
        if ok == self.healthy {
            self.streak = 0;
            return false;
        }
        self.streak = self.streak.saturating_add(1);
        let need = if ok {
            check.healthy_threshold
        } else {
            check.unhealthy_threshold
        };
        if self.streak >= need {
            self.healthy = ok;
            self.streak = 0;
            true
        } else {
            false
        }
    }

    /// Records one probe result during the start-up grace
    /// (`check.startup_grace`): a failure does not count against a healthy
    /// backend (its count of failures starts after the grace, and one still
    /// presumed healthy stays so); anything else counts as in
    /// [`HealthState::record`].
    pub fn record_in_grace(&mut self, ok: bool, check: &HealthCheck) -> bool {
        if !ok && self.healthy {
            self.streak = 0;
            return false;
        }
        self.record(ok, check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnlb_config::Probe;
    use std::time::Duration;

    fn check() -> HealthCheck {
        HealthCheck {
            probe: Probe::Tcp,
            port: 80,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            healthy_threshold: 2,
            unhealthy_threshold: 2,
            startup_grace: Duration::from_secs(3),
        }
    }

    #[test]
    fn failures_in_the_grace_do_not_count_against_a_healthy_backend() {
        let c = check();
        let mut s = HealthState::default();
        for _ in 0..5 {
            assert!(!s.record_in_grace(false, &c));
        }
        assert!(s.healthy() && s.presumed());
        // After the grace, the first failure of a backend no probe has
        // confirmed takes it down.
        assert!(s.record(false, &c));
        assert!(!s.healthy());
        // A confirmed one's failures in the grace do not count; after it,
        // they count from zero.
        let mut s = HealthState::default();
        assert!(!s.record_in_grace(true, &c));
        assert!(!s.presumed());
        for _ in 0..5 {
            assert!(!s.record_in_grace(false, &c));
        }
        assert!(!s.record(false, &c));
        assert!(s.record(false, &c));
        assert!(!s.healthy());
    }

    #[test]
    fn a_presumed_backend_goes_down_at_its_first_failure_a_confirmed_one_at_the_threshold() {
        let c = check();
        let mut s = HealthState::default();
        assert!(s.healthy() && s.presumed());
        assert!(s.record(false, &c), "one failure: down");
        assert!(!s.healthy() && !s.presumed());
        // Back up after healthy_threshold successes, confirmed.
        assert!(!s.record(true, &c));
        assert!(s.record(true, &c));
        assert!(s.healthy() && !s.presumed());
        assert!(!s.record(false, &c), "confirmed: one failure is not enough");
        assert!(s.record(false, &c));
        // A success confirms a presumed backend without flipping it.
        let mut s = HealthState::default();
        assert!(!s.record(true, &c));
        assert!(s.healthy() && !s.presumed());
        assert!(!s.record(false, &c));
        assert!(s.healthy());
        // A backend added at run time starts down, never presumed.
        assert!(!HealthState::initial().presumed());
    }

    #[test]
    fn in_the_grace_a_down_backend_still_needs_its_successes() {
        let c = check();
        let mut s = HealthState::initial();
        assert!(!s.record_in_grace(true, &c));
        assert!(!s.record_in_grace(false, &c), "streak broken");
        assert!(!s.record_in_grace(true, &c));
        assert!(!s.healthy());
        assert!(s.record_in_grace(true, &c));
        assert!(s.healthy());
    }
}
