//! Ports: the typed contracts components are wired through.
//!
//! A [`Port`] names one request type (flowing from a requirer to its provider) and one
//! indication type (flowing back). A component *provides* a port when it handles the port's
//! requests and triggers its indications; it *requires* a port when it triggers requests and
//! handles indications. Both sides keep the connection in a port field, as weak references,
//! so dropping the parent that owns the components stops the whole tree.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use kameo::actor::WeakRecipient;

/// A typed contract between two components.
///
/// Both event types are `Clone` because one request may go to several providers and one
/// indication to several requirers.
pub trait Port: Send + 'static {
    /// Events a requirer sends to the provider.
    type Request: Clone + Send + fmt::Debug + 'static;
    /// Events a provider sends to its requirers.
    type Indication: Clone + Send + fmt::Debug + 'static;
}

/// Identifies one provider–requirer connection of a port, so a provider can answer just the
/// requirer that asked.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(u64);

impl ConnectionId {
    /// A process-wide unique connection id.
    pub(crate) fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnectionId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// The actor message that carries a request of port `P` to its provider.
#[derive(Debug)]
pub struct Req<P: Port> {
    /// The connection the request came through; pass it to [`ProvidedPort::answer`].
    pub from: ConnectionId,
    /// The request itself.
    pub event: P::Request,
}

/// The actor message that carries an indication of port `P` to a requirer.
#[derive(Debug)]
pub struct Ind<P: Port> {
    /// The indication itself.
    pub event: P::Indication,
}

/// The provider's side of a port: who to send indications to.
pub struct ProvidedPort<P: Port> {
    requirers: Vec<(ConnectionId, WeakRecipient<Ind<P>>)>,
}

impl<P: Port> Default for ProvidedPort<P> {
    fn default() -> Self {
        ProvidedPort {
            requirers: Vec::new(),
        }
    }
}

impl<P: Port> ProvidedPort<P> {
    /// Sends an indication to every connected requirer (dropping the ones that have stopped).
    pub fn trigger(&mut self, event: P::Indication) {
        fan_out(&mut self.requirers, event, |_, event| Ind::<P> { event });
    }

    /// Sends an indication to the one requirer behind `to`; false if it is gone.
    pub fn answer(&mut self, to: ConnectionId, event: P::Indication) -> bool {
        let Some(pos) = self.requirers.iter().position(|(id, _)| *id == to) else {
            return false;
        };
        if deliver(&self.requirers[pos].1, Ind::<P> { event }) {
            return true;
        }
        self.requirers.swap_remove(pos);
        false
    }

    /// How many requirers are connected (live or not yet noticed dead).
    pub fn connections(&self) -> usize {
        self.requirers.len()
    }

    pub(crate) fn attach(&mut self, id: ConnectionId, requirer: WeakRecipient<Ind<P>>) {
        self.requirers.push((id, requirer));
    }
}

/// The requirer's side of a port: who to send requests to.
pub struct RequiredPort<P: Port> {
    providers: Vec<(ConnectionId, WeakRecipient<Req<P>>)>,
}

impl<P: Port> Default for RequiredPort<P> {
    fn default() -> Self {
        RequiredPort {
            providers: Vec::new(),
        }
    }
}

impl<P: Port> RequiredPort<P> {
    /// Sends a request to every connected provider (usually exactly one). Returns false when no
    /// live provider took it, which a component treats like a lost message.
    pub fn trigger(&mut self, event: P::Request) -> bool {
        fan_out(&mut self.providers, event, |from, event| Req::<P> {
            from,
            event,
        });
        !self.providers.is_empty()
    }

    /// Sends a request to the one provider behind `to` (a requirer connected to several
    /// providers of the same port, such as the overlay to each local group's replica, picks
    /// one per request); false if that provider is gone or was never connected.
    pub fn trigger_on(&mut self, to: ConnectionId, event: P::Request) -> bool {
        let Some(pos) = self.providers.iter().position(|(id, _)| *id == to) else {
            return false;
        };
        if deliver(&self.providers[pos].1, Req::<P> { from: to, event }) {
            return true;
        }
        self.providers.swap_remove(pos);
        false
    }

    /// Whether any provider is connected.
    pub fn is_connected(&self) -> bool {
        !self.providers.is_empty()
    }

    pub(crate) fn attach(&mut self, id: ConnectionId, provider: WeakRecipient<Req<P>>) {
        self.providers.push((id, provider));
    }
}

/// Sends `event` to every target, cloning it for all but the last (most ports have one
/// connection, so the common case moves it), and forgets targets that have stopped.
fn fan_out<E: Clone, M: Send + 'static>(
    targets: &mut Vec<(ConnectionId, WeakRecipient<M>)>,
    event: E,
    wrap: impl Fn(ConnectionId, E) -> M,
) {
    let mut event = Some(event);
    let last = targets.len().saturating_sub(1);
    let mut index = 0;
    targets.retain(|(conn, target)| {
        let this = if index == last {
            event.take()
        } else {
            event.clone()
        };
        index += 1;
        let this = this.expect("one event per target");
        deliver(target, wrap(*conn, this))
    });
}

/// Hands a message to a weakly held component without waiting; false when it has stopped.
///
/// Components run with unbounded mailboxes, so a live one always has room: protocols never
/// block on each other, and back-pressure lives at the edges (client admission, sockets).
fn deliver<M: Send + 'static>(to: &WeakRecipient<M>, msg: M) -> bool {
    match to.upgrade() {
        Some(recipient) => recipient.tell(msg).try_send().is_ok(),
        None => false,
    }
}
