//! The parent of a node's components.
//!
//! A node is crash-stop: a component that fails takes the whole node down with it, because a
//! protocol component restarted without its state could break the promises it made (an
//! acceptor that forgot its promises may let two values be chosen). The [`Supervisor`] holds
//! the only strong references to its children, so stopping it (or dropping its last
//! reference) stops the tree, and it is linked to every child, so a child's failure stops it.

use std::convert::Infallible;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;

use kameo::actor::{ActorId, ActorRef, Spawn, WeakActorRef};
use kameo::error::ActorStopReason;
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::Actor;

/// Owns a node's components and stops them all when one fails.
pub struct Supervisor {
    name: String,
    children: Vec<Child>,
}

struct Child {
    id: ActorId,
    name: &'static str,
    handle: Box<dyn Stoppable>,
}

/// A strong, type-erased handle on a child that can ask it to stop.
trait Stoppable: Send {
    fn stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<A: Actor> Stoppable for ActorRef<A> {
    fn stop(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // An error only means the child is already gone.
            let _ = self.stop_gracefully().await;
        })
    }
}

impl Actor for Supervisor {
    type Args = String;
    type Error = Infallible;

    async fn on_start(name: String, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Supervisor {
            name,
            children: Vec::new(),
        })
    }

    async fn on_link_died(
        &mut self,
        _: WeakActorRef<Self>,
        id: ActorId,
        reason: ActorStopReason,
    ) -> Result<ControlFlow<ActorStopReason>, Infallible> {
        let child = self.children.iter().find(|c| c.id == id).map(|c| c.name);
        if matches!(reason, ActorStopReason::Normal) {
            tracing::debug!(node = %self.name, ?child, "component stopped");
            self.children.retain(|c| c.id != id);
            return Ok(ControlFlow::Continue(()));
        }
        tracing::error!(node = %self.name, ?child, %reason, "component failed: stopping the node");
        Ok(ControlFlow::Break(ActorStopReason::LinkDied {
            id,
            reason: Box::new(reason),
        }))
    }

    async fn on_stop(
        &mut self,
        _: WeakActorRef<Self>,
        reason: ActorStopReason,
    ) -> Result<(), Infallible> {
        tracing::debug!(node = %self.name, %reason, "stopping components");
        // Stop in reverse start order: edges before the protocols they feed.
        for child in self.children.drain(..).rev() {
            child.handle.stop().await;
        }
        Ok(())
    }
}

/// Hands the supervisor a strong reference to keep for as long as it lives.
struct Adopt(Child);

impl Message<Adopt> for Supervisor {
    type Reply = ();

    async fn handle(&mut self, Adopt(child): Adopt, _: &mut Context<Self, ()>) {
        self.children.push(child);
    }
}

/// Asks how many children are alive (for status pages and tests).
pub struct CountChildren;

impl Message<CountChildren> for Supervisor {
    type Reply = usize;

    async fn handle(&mut self, _: CountChildren, _: &mut Context<Self, usize>) -> usize {
        self.children.len()
    }
}

/// Starts a supervisor for the node called `name`.
pub fn start_supervisor(name: impl Into<String>) -> ActorRef<Supervisor> {
    Supervisor::spawn_with_mailbox(name.into(), mailbox::unbounded())
}

/// Starts a component under `parent`, linked to it and kept alive by it.
///
/// The returned reference is strong; the caller should hold it only while wiring, or
/// downgrade it, so that the supervisor stays the owner of the component's lifetime.
pub async fn spawn_child<A: Actor>(parent: &ActorRef<Supervisor>, args: A::Args) -> ActorRef<A> {
    let child = A::spawn_link_with_mailbox(parent, args, mailbox::unbounded()).await;
    let adopt = Adopt(Child {
        id: child.id(),
        name: std::any::type_name::<A>(),
        handle: Box::new(child.clone()),
    });
    if parent.tell(adopt).await.is_err() {
        tracing::warn!(
            "supervisor stopped before adopting {}",
            std::any::type_name::<A>()
        );
    }
    child
}
