//! Time for the data plane: wrapping milliseconds, read once per burst.

use std::time::Instant;

/// A source of wrapping millisecond ticks.
pub trait Clock {
    /// Milliseconds since some start, wrapping at 2^32.
    fn now_ms(&self) -> u32;
}

/// The monotonic clock (vDSO `clock_gettime`, no syscall), read per burst.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    start: Instant,
}

impl Default for MonotonicClock {
    #[allow(clippy::disallowed_methods, reason = "made on the control thread")]
    fn default() -> Self {
        MonotonicClock {
            start: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now_ms(&self) -> u32 {
        self.start.elapsed().as_millis() as u32
    }
}
