//! The Timer component: provides [`TimerPort`] on tokio time.
//!
//! Together with the perfect link this is the only component that touches tokio time; every
//! protocol learns that time passed from its timeouts. Each scheduled timeout runs as a small
//! task that reports back to the timer actor, which checks that the timeout is still the
//! current one before answering the requirer that scheduled it: a timeout cancelled or
//! replaced while its task was already firing is dropped here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use kameo::actor::{ActorRef, WeakActorRef};
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::port::{ConnectionId, ProvidedPort, Req};
use kv_ports::timer::{Timeout, TimerId, TimerPort, TimerRequest};
use tokio::time::{interval_at, sleep, Instant, MissedTickBehavior};

use crate::task::{tell_weak, TaskGuard};

/// Provides timeouts to the components of one node.
pub struct Timer {
    port: ProvidedPort<TimerPort>,
    me: WeakActorRef<Timer>,
    scheduled: HashMap<Key, Scheduled>,
    next_generation: u64,
}

/// Timer ids are chosen by requirers, so they are unique only per connection.
type Key = (ConnectionId, TimerId);

/// A scheduled timeout; dropping it (on cancel or replacement) aborts its task.
struct Scheduled {
    generation: u64,
    periodic: bool,
    _task: TaskGuard,
}

/// A scheduled timeout's task reporting that it fired.
struct Fired {
    key: Key,
    generation: u64,
}

impl Actor for Timer {
    type Args = ();
    type Error = Infallible;

    async fn on_start(_: (), me: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Timer {
            port: ProvidedPort::default(),
            me: me.downgrade(),
            scheduled: HashMap::new(),
            next_generation: 0,
        })
    }
}

kv_ports::component!(Timer);

kv_ports::provides!(Timer: TimerPort = port);

impl Message<Req<TimerPort>> for Timer {
    type Reply = ();

    async fn handle(&mut self, req: Req<TimerPort>, _: &mut Context<Self, ()>) {
        match req.event {
            TimerRequest::Once { id, after } => self.schedule((req.from, id), after, false),
            TimerRequest::Periodic { id, every } => self.schedule((req.from, id), every, true),
            TimerRequest::Cancel { id } => {
                self.scheduled.remove(&(req.from, id));
            }
        }
    }
}

impl Message<Fired> for Timer {
    type Reply = ();

    async fn handle(&mut self, fired: Fired, _: &mut Context<Self, ()>) {
        let Some(current) = self.scheduled.get(&fired.key) else {
            return;
        };
        if current.generation != fired.generation {
            return;
        }
        if !current.periodic {
            self.scheduled.remove(&fired.key);
        }
        let (conn, id) = fired.key;
        if !self.port.answer(conn, Timeout { id }) {
            // The requirer is gone: none of its timeouts can be delivered any more.
            self.scheduled.retain(|(c, _), _| *c != conn);
        }
    }
}

impl Timer {
    fn schedule(&mut self, key: Key, period: Duration, periodic: bool) {
        assert!(
            !periodic || !period.is_zero(),
            "a periodic timeout needs a positive period"
        );
        self.next_generation += 1;
        let generation = self.next_generation;
        let me = self.me.clone();
        let task = if periodic {
            TaskGuard::spawn(tick_every(me, key, generation, period))
        } else {
            TaskGuard::spawn(fire_once(me, key, generation, period))
        };
        let scheduled = Scheduled {
            generation,
            periodic,
            _task: task,
        };
        // Replacing an entry drops the old one, which aborts its task.
        self.scheduled.insert(key, scheduled);
    }
}

async fn fire_once(me: WeakActorRef<Timer>, key: Key, generation: u64, after: Duration) {
    sleep(after).await;
    report(&me, key, generation);
}

async fn tick_every(me: WeakActorRef<Timer>, key: Key, generation: u64, every: Duration) {
    let mut ticks = interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if !report(&me, key, generation) {
            return;
        }
    }
}

/// Tells the timer a timeout fired; false once the timer has stopped.
fn report(me: &WeakActorRef<Timer>, key: Key, generation: u64) -> bool {
    tell_weak(me, Fired { key, generation })
}

#[cfg(test)]
mod tests;
