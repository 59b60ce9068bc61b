//! A token bucket driven by a caller-supplied clock (milliseconds).

/// Tokens refill at `rate_per_sec`, up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_sec: u32,
    burst: u32,
    /// Tokens in thousandths, so sub-token refills per millisecond add up.
    milli_tokens: u64,
    last_ms: u32,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u32, burst: u32, now_ms: u32) -> Self {
        TokenBucket {
            rate_per_sec,
            burst,
            milli_tokens: burst as u64 * 1000,
            last_ms: now_ms,
        }
    }

    /// Takes a token if there is one.
    #[inline]
    pub fn take(&mut self, now_ms: u32) -> bool {
        let elapsed = now_ms.wrapping_sub(self.last_ms);
        // A clock that went backwards (wrapping_sub huge) refills nothing.
        if elapsed < u32::MAX / 2 {
            let add = elapsed as u64 * self.rate_per_sec as u64;
            self.milli_tokens = (self.milli_tokens + add).min(self.burst as u64 * 1000);
            self.last_ms = now_ms;
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_rate() {
        let mut b = TokenBucket::new(10, 3, 1000);
        assert_eq!((0..5).filter(|_| b.take(1000)).count(), 3);
        assert!(!b.take(1050)); // 0.5 token
        assert!(b.take(1100)); // 1 token after 100 ms at 10/s
        assert!(!b.take(1100));
        assert_eq!((0..10).filter(|_| b.take(60_000)).count(), 3); // capped at burst
                                                                   // wrapping clock
        let mut w = TokenBucket::new(1000, 1, u32::MAX - 1);
        assert!(w.take(u32::MAX - 1));
        assert!(w.take(1)); // 3 ms later across the wrap
    }
}
