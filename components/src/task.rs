//! Small tools for the tokio tasks that edge components (sockets, timers) spawn.
//!
//! Such tasks report to their component through a weak reference, so they never keep it
//! alive, and are owned by guards that abort them, so they never outlive it.

use kameo::actor::WeakActorRef;
use kameo::message::Message;
use kameo::Actor;
use tokio::task::AbortHandle;

/// Aborts its task when dropped, so a task never outlives its owner.
#[derive(Debug)]
pub struct TaskGuard(AbortHandle);

impl TaskGuard {
    /// Spawns `task` on the current runtime, owned by the returned guard.
    pub fn spawn<F>(task: F) -> Self
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        TaskGuard(tokio::spawn(task).abort_handle())
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Hands `msg` to `actor` without waiting if it is still alive; false once it has stopped
/// (the task should then end).
pub fn tell_weak<A, M>(actor: &WeakActorRef<A>, msg: M) -> bool
where
    A: Actor + Message<M>,
    M: Send + 'static,
{
    match actor.upgrade() {
        Some(actor) => actor.tell(msg).try_send().is_ok(),
        None => false,
    }
}
