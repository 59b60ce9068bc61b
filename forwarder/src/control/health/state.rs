//! A backend's health: a threshold state machine driven by probe results,
//! pure (no clock: whether the start-up grace still runs is passed in).

use dnlb_config::HealthCheck;

/// Health of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthState {
    healthy: bool,
    /// Consecutive results disagreeing with `healthy`.
    streak: u8,
}

impl Default for HealthState {
    /// Healthy: a backend at the gateway's start, or in a group that just
    /// gained its health check, serves at once.
    fn default() -> Self {
        HealthState {
            healthy: true,
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
            streak: 0,
        }
    }

    /// Whether the backend counts as healthy.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// Records one probe result; returns true when the state flipped.
    pub fn record(&mut self, ok: bool, check: &HealthCheck) -> bool {
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
    /// backend (its count of failures starts after the grace); anything else
    /// counts as in [`HealthState::record`].
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
        assert!(s.healthy());
        // After the grace, failures count from zero.
        assert!(!s.record(false, &c));
        assert!(s.record(false, &c));
        assert!(!s.healthy());
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
