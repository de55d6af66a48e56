//! The Timer port: the one way components learn that time has passed.

use std::collections::HashMap;
use std::time::Duration;

use crate::port::{Port, RequiredPort};

/// Names one scheduled timeout of one requirer. Requirers pick fresh ids for every schedule
/// (see [`Timers`]), which is what lets them recognise a timeout that raced with its cancel.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub u64);

/// Requests to the timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerRequest {
    /// Fire `id` once, `after` from now. Scheduling an id again replaces it.
    Once {
        /// The timeout's name.
        id: TimerId,
        /// How long to wait.
        after: Duration,
    },
    /// Fire `id` every `every`, the first time `every` from now, until cancelled.
    Periodic {
        /// The timeout's name.
        id: TimerId,
        /// The period (must be positive).
        every: Duration,
    },
    /// Stop `id`; a no-op if it is unknown or already fired.
    Cancel {
        /// The timeout to stop.
        id: TimerId,
    },
}

/// A timeout that fired; sent only to the requirer that scheduled it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timeout {
    /// The timeout's name.
    pub id: TimerId,
}

/// Schedule timeouts, hear them fire.
pub struct TimerPort;

impl Port for TimerPort {
    type Request = TimerRequest;
    type Indication = Timeout;
}

/// Requirer-side bookkeeping of timeouts: gives each schedule a fresh id, remembers what it was
/// for, and filters out timeouts that fired after they were cancelled or replaced.
#[derive(Debug)]
pub struct Timers<K> {
    next: u64,
    active: HashMap<TimerId, (K, bool)>,
}

impl<K: Clone> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            next: 0,
            active: HashMap::new(),
        }
    }
}

impl<K: Clone> Timers<K> {
    /// Schedules `kind` to fire once after `after`.
    pub fn once(
        &mut self,
        port: &mut RequiredPort<TimerPort>,
        after: Duration,
        kind: K,
    ) -> TimerId {
        let id = self.fresh(kind, false);
        port.trigger(TimerRequest::Once { id, after });
        id
    }

    /// Schedules `kind` to fire every `every`.
    pub fn periodic(
        &mut self,
        port: &mut RequiredPort<TimerPort>,
        every: Duration,
        kind: K,
    ) -> TimerId {
        let id = self.fresh(kind, true);
        port.trigger(TimerRequest::Periodic { id, every });
        id
    }

    /// Cancels `id`; a timeout for it that is already on its way will be ignored.
    pub fn cancel(&mut self, port: &mut RequiredPort<TimerPort>, id: TimerId) {
        if self.active.remove(&id).is_some() {
            port.trigger(TimerRequest::Cancel { id });
        }
    }

    /// What a fired timeout was for, or `None` when it is stale (cancelled or already fired).
    pub fn fired(&mut self, timeout: Timeout) -> Option<K> {
        let (kind, periodic) = self.active.get(&timeout.id)?.clone();
        if !periodic {
            self.active.remove(&timeout.id);
        }
        Some(kind)
    }

    /// How many timeouts are scheduled.
    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// Whether no timeout is scheduled.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    fn fresh(&mut self, kind: K, periodic: bool) -> TimerId {
        self.next += 1;
        let id = TimerId(self.next);
        self.active.insert(id, (kind, periodic));
        id
    }
}
