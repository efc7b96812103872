//! Time that keeps counting while the machine is suspended.
//!
//! `std::time::Instant` is CLOCK_MONOTONIC, which stops during suspend: an idle timer
//! built on it would leave a laptop that was closed for hours unlocked when it is opened
//! again. Auto-lock measures idleness on CLOCK_BOOTTIME instead.

use std::time::Duration;

/// A point on CLOCK_BOOTTIME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BootInstant(Duration);

impl BootInstant {
    /// The moment the machine booted: earlier than every other reading.
    pub const BOOT: BootInstant = BootInstant(Duration::ZERO);

    pub fn now() -> Self {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid out-pointer; CLOCK_BOOTTIME exists on every Linux since 2.6.39.
        let result = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
        if result != 0 {
            // Unreachable on Linux; fall back to "no time has passed", which never
            // locks early (the next tick tries again).
            return BootInstant(Duration::ZERO);
        }
        BootInstant(Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        ))
    }

    /// A point `after` later than this one (for tests and schedules).
    pub fn plus(self, after: Duration) -> Self {
        BootInstant(self.0.saturating_add(after))
    }

    /// How long from `earlier` to this point; zero if `earlier` is later.
    pub fn since(self, earlier: BootInstant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }

    pub fn elapsed(self) -> Duration {
        BootInstant::now().since(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_on_the_boot_clock_not_the_monotonic_one() {
        let before = BootInstant::now();
        let mut boot = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid out-pointer.
        assert_eq!(
            unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut boot) },
            0
        );
        let after = BootInstant::now();
        let read = Duration::new(boot.tv_sec as u64, boot.tv_nsec as u32);
        assert!(before.0 <= read && read <= after.0);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = BootInstant::now();
        assert_eq!(
            t.plus(Duration::from_secs(5)).since(t),
            Duration::from_secs(5)
        );
        assert_eq!(t.since(t.plus(Duration::from_secs(5))), Duration::ZERO);
    }
}
