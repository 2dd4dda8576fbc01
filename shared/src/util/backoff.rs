//! Exponential backoff with full jitter, for calls that may succeed when retried later.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::hash::fnv1a;

/// Exponents above this add nothing (any sensible cap is reached long before) and would overflow.
const MAX_EXPONENT: u32 = 16;

/// Before retry `n` (counted from 0), wait a random time between zero and `base × 2^n`, at most
/// `cap`. The randomness ("full jitter") spreads the retries of callers that failed together, for
/// example several functions throttled by the same limit, instead of having them retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The bound of the first retry's wait.
    pub base: Duration,
    /// No wait is longer than this.
    pub cap: Duration,
}

impl Backoff {
    /// Waits bounded by `base × 2^n`, at most `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap }
    }

    /// The longest wait before retry `n`: `base × 2^n`, at most `cap` (whole milliseconds).
    pub fn bound(&self, n: u32) -> Duration {
        let grown = millis(self.base).saturating_mul(1 << n.min(MAX_EXPONENT));
        Duration::from_millis(grown.min(millis(self.cap)))
    }

    /// A random wait in `[0, bound(n)]`. `salt` (a record index, a day's hash) keeps two callers
    /// that ask in the same nanosecond from drawing the same wait.
    pub fn delay(&self, n: u32, salt: u64) -> Duration {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        self.draw(n, fnv1a(&(nanos ^ salt).to_le_bytes()))
    }

    /// The wait before retry `n` for a given random number: uniform over `[0, bound(n)]`.
    fn draw(&self, n: u32, random: u64) -> Duration {
        let bound = millis(self.bound(n));
        Duration::from_millis(random % bound.saturating_add(1))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn bound_doubles_until_the_cap() {
        let b = Backoff::new(100 * MS, 800 * MS);
        let bounds: Vec<u128> = (0..6).map(|n| b.bound(n).as_millis()).collect();
        assert_eq!(bounds, [100, 200, 400, 800, 800, 800]);
    }

    #[test]
    fn bound_is_capped_even_for_huge_retry_counts() {
        let b = Backoff::new(200 * MS, 200 * MS * 1024);
        assert_eq!(b.bound(10), 200 * MS * 1024);
        assert_eq!(b.bound(u32::MAX), 200 * MS * 1024);
        let huge = Backoff::new(Duration::from_secs(u64::MAX / 1000), Duration::MAX);
        assert!(
            huge.bound(40) >= huge.bound(0),
            "saturates instead of overflowing"
        );
    }

    #[test]
    fn draws_cover_zero_to_the_bound_and_never_exceed_it() {
        let b = Backoff::new(100 * MS, 5_000 * MS);
        for n in 0..20 {
            let bound = b.bound(n);
            assert_eq!(b.draw(n, 0), Duration::ZERO);
            assert_eq!(b.draw(n, bound.as_millis() as u64), bound);
            for random in [1, 7, 12_345, u64::MAX / 3, u64::MAX] {
                assert!(b.draw(n, random) <= bound, "{n}: {random}");
            }
        }
    }

    #[test]
    fn delays_stay_within_the_bound() {
        let b = Backoff::new(10 * MS, 50 * MS);
        for n in 0..10 {
            for salt in 0..50 {
                assert!(b.delay(n, salt) <= b.bound(n), "{n}");
            }
        }
        assert_eq!(Backoff::new(Duration::ZERO, MS).delay(3, 1), Duration::ZERO);
    }
}
