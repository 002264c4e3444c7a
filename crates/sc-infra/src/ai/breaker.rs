//! A consecutive-failure circuit breaker for the AI provider.
//!
//! A provider that is down or overloaded makes every request wait for its timeout; after
//! [`FAILURE_THRESHOLD`] failures in a row the breaker opens and calls fail at once for
//! [`COOL_DOWN`], which keeps request handlers (and the provider) from piling up. After the
//! cool-down it is half-open: exactly one trial request goes through, and its outcome closes the
//! breaker again or reopens it for another cool-down.
//!
//! Time is passed in by the caller (`now`) instead of read here, so the tests drive it without
//! sleeping.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Consecutive failures that open the breaker.
pub const FAILURE_THRESHOLD: u32 = 5;
/// How long an open breaker refuses calls before it lets one trial through.
pub const COOL_DOWN: Duration = Duration::from_secs(30);

/// What the breaker currently lets through, as seen at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; `failures` is the current run of consecutive failures.
    Closed { failures: u32 },
    /// Calls fail at once.
    Open,
    /// The cool-down is over: one trial call may go through (none is in flight), or one is.
    HalfOpen { trial_in_flight: bool },
}

#[derive(Debug)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

/// The breaker; share it as `Arc<Breaker>` because a [`Permit`] points back to it.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    phase: Mutex<Phase>,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker::new(FAILURE_THRESHOLD, COOL_DOWN)
    }
}

impl Breaker {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cool_down,
            phase: Mutex::new(Phase::Closed { failures: 0 }),
        }
    }

    /// The phase, with an expired open period already turned into half-open. A poisoned lock
    /// is taken over: the phase is a plain value that a panic cannot leave half-written.
    fn phase(&self, now: Instant) -> MutexGuard<'_, Phase> {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Open { until } = *phase
            && now >= until
        {
            *phase = Phase::HalfOpen {
                trial_in_flight: false,
            };
        }
        phase
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match *self.phase(now) {
            Phase::Closed { failures } => BreakerState::Closed { failures },
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { trial_in_flight } => BreakerState::HalfOpen { trial_in_flight },
        }
    }

    /// Whether a call made now would be let through (without taking the trial slot).
    pub fn would_allow(&self, now: Instant) -> bool {
        match *self.phase(now) {
            Phase::Closed { .. } => true,
            Phase::Open { .. } => false,
            Phase::HalfOpen { trial_in_flight } => !trial_in_flight,
        }
    }

    /// Asks to make a call: `None` while open (or while the half-open trial is in flight).
    /// The permit reports the outcome; dropping it unreported (the caller gave up) frees the
    /// trial slot without counting either way.
    pub fn try_acquire(self: &Arc<Self>, now: Instant) -> Option<Permit> {
        let mut phase = self.phase(now);
        let trial = match *phase {
            Phase::Closed { .. } => false,
            Phase::Open { .. }
            | Phase::HalfOpen {
                trial_in_flight: true,
            } => return None,
            Phase::HalfOpen {
                trial_in_flight: false,
            } => {
                *phase = Phase::HalfOpen {
                    trial_in_flight: true,
                };
                true
            }
        };
        Some(Permit {
            breaker: Arc::clone(self),
            trial,
            reported: false,
        })
    }

    /// The provider answered properly: close the breaker and forget earlier failures.
    pub fn record_success(&self) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = Phase::Closed { failures: 0 };
    }

    /// The provider failed. Returns true when this failure opened the breaker (for a log
    /// line). A failure reported while already open (a call that began before it opened)
    /// changes nothing.
    pub fn record_failure(&self, now: Instant) -> bool {
        let mut phase = self.phase(now);
        let next = match *phase {
            Phase::Closed { failures } if failures + 1 < self.threshold => Phase::Closed {
                failures: failures + 1,
            },
            Phase::Closed { .. } | Phase::HalfOpen { .. } => Phase::Open {
                until: now + self.cool_down,
            },
            Phase::Open { .. } => return false,
        };
        let opened = matches!(next, Phase::Open { .. });
        *phase = next;
        opened
    }

    /// An unreported trial went away: let the next call be the trial.
    fn release_trial(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::HalfOpen {
            trial_in_flight: true,
        } = *phase
        {
            *phase = Phase::HalfOpen {
                trial_in_flight: false,
            };
        }
    }
}

/// Leave to make one call; report how it went with [`Permit::success`] or [`Permit::failure`].
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<Breaker>,
    trial: bool,
    reported: bool,
}

impl Permit {
    pub fn success(mut self) {
        self.reported = true;
        self.breaker.record_success();
    }

    /// Returns true when this failure opened the breaker.
    pub fn failure(mut self, now: Instant) -> bool {
        self.reported = true;
        self.breaker.record_failure(now)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.trial && !self.reported {
            self.breaker.release_trial();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> (Arc<Breaker>, Instant) {
        (Arc::new(Breaker::default()), Instant::now())
    }

    #[test]
    fn opens_after_five_consecutive_failures() {
        let (b, t0) = breaker();
        for i in 0..FAILURE_THRESHOLD - 1 {
            let permit = b.try_acquire(t0).expect("closed");
            assert!(!permit.failure(t0));
            assert_eq!(b.state(t0), BreakerState::Closed { failures: i + 1 });
        }
        let permit = b.try_acquire(t0).expect("still closed");
        assert!(permit.failure(t0), "the fifth failure opens it");
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(b.try_acquire(t0).is_none());
        assert!(!b.would_allow(t0 + COOL_DOWN - Duration::from_millis(1)));
        assert!(
            b.try_acquire(t0 + COOL_DOWN - Duration::from_millis(1))
                .is_none()
        );
    }

    #[test]
    fn a_success_resets_the_run_of_failures() {
        let (b, t0) = breaker();
        for _ in 0..FAILURE_THRESHOLD - 1 {
            b.try_acquire(t0).expect("closed").failure(t0);
        }
        b.try_acquire(t0).expect("closed").success();
        assert_eq!(b.state(t0), BreakerState::Closed { failures: 0 });
        for _ in 0..FAILURE_THRESHOLD - 1 {
            b.try_acquire(t0).expect("closed").failure(t0);
        }
        assert_eq!(
            b.state(t0),
            BreakerState::Closed {
                failures: FAILURE_THRESHOLD - 1
            }
        );
    }

    fn open(b: &Arc<Breaker>, now: Instant) {
        for _ in 0..FAILURE_THRESHOLD {
            b.record_failure(now);
        }
        assert_eq!(b.state(now), BreakerState::Open);
    }

    #[test]
    fn after_the_cool_down_one_trial_and_its_success_closes() {
        let (b, t0) = breaker();
        open(&b, t0);
        let t1 = t0 + COOL_DOWN;
        assert_eq!(
            b.state(t1),
            BreakerState::HalfOpen {
                trial_in_flight: false
            }
        );
        assert!(b.would_allow(t1));
        let trial = b.try_acquire(t1).expect("the trial");
        assert!(b.try_acquire(t1).is_none(), "only one trial at a time");
        assert!(!b.would_allow(t1));
        trial.success();
        assert_eq!(b.state(t1), BreakerState::Closed { failures: 0 });
        assert!(b.try_acquire(t1).is_some());
    }

    #[test]
    fn a_failed_trial_reopens_for_another_cool_down() {
        let (b, t0) = breaker();
        open(&b, t0);
        let t1 = t0 + COOL_DOWN + Duration::from_secs(1);
        assert!(b.try_acquire(t1).expect("trial").failure(t1));
        assert_eq!(b.state(t1), BreakerState::Open);
        assert!(
            b.try_acquire(t1 + COOL_DOWN - Duration::from_secs(1))
                .is_none()
        );
        assert!(b.try_acquire(t1 + COOL_DOWN).is_some());
    }

    #[test]
    fn an_abandoned_trial_frees_the_slot() {
        let (b, t0) = breaker();
        open(&b, t0);
        let t1 = t0 + COOL_DOWN;
        drop(b.try_acquire(t1).expect("trial"));
        assert_eq!(
            b.state(t1),
            BreakerState::HalfOpen {
                trial_in_flight: false
            }
        );
        assert!(b.try_acquire(t1).is_some());
    }

    #[test]
    fn late_failures_while_open_do_not_extend_it() {
        let (b, t0) = breaker();
        let late = b.try_acquire(t0).expect("closed");
        open(&b, t0);
        assert!(!late.failure(t0 + Duration::from_secs(10)));
        assert!(b.try_acquire(t0 + COOL_DOWN).is_some());
    }

    #[test]
    fn dropping_a_closed_permit_counts_nothing() {
        let (b, t0) = breaker();
        b.record_failure(t0);
        drop(b.try_acquire(t0));
        assert_eq!(b.state(t0), BreakerState::Closed { failures: 1 });
    }
}
