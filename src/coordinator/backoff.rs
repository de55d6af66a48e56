//! Capped exponential backoff between reconnection attempts.
//!
//! A node whose coordinator is down (or restarting) must keep trying forever without
//! hammering the address or flooding the log: the delay doubles from a short first wait, so a
//! quick restart is noticed quickly, up to a cap that bounds how stale a node can be once the
//! coordinator is back.

use std::time::Duration;

/// Delays that double from `first` up to `cap`, until [`reset`](Backoff::reset).
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `first` and never exceeds `cap` (a `cap` below `first` is raised to it).
    pub fn new(first: Duration, cap: Duration) -> Self {
        Backoff {
            first,
            cap: cap.max(first),
            next: first,
        }
    }

    /// The delay to wait now; the following one is twice as long, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = delay.saturating_mul(2).min(self.cap);
        delay
    }

    /// Starts over from the first delay, after an attempt that worked.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(50 * MS, 2000 * MS);
        let delays: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        b.reset();
        assert_eq!(b.next_delay(), 50 * MS);
    }

    #[test]
    fn a_cap_below_the_first_delay_is_the_first_delay() {
        let mut b = Backoff::new(50 * MS, MS);
        assert_eq!(b.next_delay(), 50 * MS);
        assert_eq!(b.next_delay(), 50 * MS);
    }
}
