//! Stand-in components for testing one component through its real ports.
//!
//! A [`Probe`] requires a port and turns its indications into a channel the test reads; a
//! [`FakeProvider`] provides a port and turns its requests into a channel, while the test
//! triggers indications by hand. Both go through the same wiring as production components.

use std::convert::Infallible;

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use tokio::sync::mpsc;

use crate::component::{connect, spawn, Component, ConnectError, Provides, Requires, Wire};
use crate::port::{ConnectionId, Ind, Port, ProvidedPort, Req, RequiredPort};

/// Requires `P`: forwards every indication to a channel, triggers requests on demand.
pub struct Probe<P: Port> {
    port: RequiredPort<P>,
    seen: mpsc::UnboundedSender<P::Indication>,
}

impl<P: Port> Actor for Probe<P> {
    type Args = mpsc::UnboundedSender<P::Indication>;
    type Error = Infallible;

    async fn on_start(seen: Self::Args, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Probe {
            port: RequiredPort::default(),
            seen,
        })
    }
}

impl<P: Port> Message<Ind<P>> for Probe<P> {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<P>, _: &mut Context<Self, ()>) {
        let _ = self.seen.send(ind.event);
    }
}

/// Makes a [`Probe`] trigger a request on its required port.
pub struct Trigger<R>(pub R);

impl<P: Port> Message<Trigger<P::Request>> for Probe<P> {
    type Reply = bool;

    async fn handle(&mut self, t: Trigger<P::Request>, _: &mut Context<Self, bool>) -> bool {
        self.port.trigger(t.0)
    }
}

/// Ask a [`Probe`] to trigger a request on one of its connections only; answers whether that
/// provider took it.
pub struct TriggerOn<R>(pub ConnectionId, pub R);

impl<P: Port> Message<TriggerOn<P::Request>> for Probe<P> {
    type Reply = bool;

    async fn handle(&mut self, t: TriggerOn<P::Request>, _: &mut Context<Self, bool>) -> bool {
        self.port.trigger_on(t.0, t.1)
    }
}

impl<P: Port> Message<Wire<Probe<P>>> for Probe<P> {
    type Reply = ();

    async fn handle(&mut self, wire: Wire<Probe<P>>, _: &mut Context<Self, ()>) {
        wire.apply(self);
    }
}

impl<P: Port> Component for Probe<P> {}

impl<P: Port> Requires<P> for Probe<P> {
    fn required(&mut self) -> &mut RequiredPort<P> {
        &mut self.port
    }
}

/// Starts a [`Probe`] for `P` connected to `provider`.
pub async fn probe<P: Port, A: Provides<P>>(
    provider: &ActorRef<A>,
) -> Result<(ActorRef<Probe<P>>, mpsc::UnboundedReceiver<P::Indication>), ConnectError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let probe = spawn::<Probe<P>>(tx);
    connect::<P, A, Probe<P>>(provider, &probe).await?;
    Ok((probe, rx))
}

/// Provides `P`: forwards every request (with its connection) to a channel; the test answers.
pub struct FakeProvider<P: Port> {
    port: ProvidedPort<P>,
    seen: mpsc::UnboundedSender<(ConnectionId, P::Request)>,
}

impl<P: Port> Actor for FakeProvider<P> {
    type Args = mpsc::UnboundedSender<(ConnectionId, P::Request)>;
    type Error = Infallible;

    async fn on_start(seen: Self::Args, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(FakeProvider {
            port: ProvidedPort::default(),
            seen,
        })
    }
}

impl<P: Port> Message<Req<P>> for FakeProvider<P> {
    type Reply = ();

    async fn handle(&mut self, req: Req<P>, _: &mut Context<Self, ()>) {
        let _ = self.seen.send((req.from, req.event));
    }
}

/// Makes a [`FakeProvider`] send an indication: to one connection, or to all when `to` is None.
pub struct Indicate<I> {
    /// The requirer to answer, or every requirer.
    pub to: Option<ConnectionId>,
    /// The indication.
    pub event: I,
}

impl<P: Port> Message<Indicate<P::Indication>> for FakeProvider<P> {
    type Reply = ();

    async fn handle(&mut self, ind: Indicate<P::Indication>, _: &mut Context<Self, ()>) {
        match ind.to {
            Some(conn) => {
                self.port.answer(conn, ind.event);
            }
            None => self.port.trigger(ind.event),
        }
    }
}

impl<P: Port> Message<Wire<FakeProvider<P>>> for FakeProvider<P> {
    type Reply = ();

    async fn handle(&mut self, wire: Wire<FakeProvider<P>>, _: &mut Context<Self, ()>) {
        wire.apply(self);
    }
}

impl<P: Port> Component for FakeProvider<P> {}

impl<P: Port> Provides<P> for FakeProvider<P> {
    fn provided(&mut self) -> &mut ProvidedPort<P> {
        &mut self.port
    }
}

/// The requests a [`FakeProvider`] received, each with the connection to answer on.
pub type Requests<P> = mpsc::UnboundedReceiver<(ConnectionId, <P as Port>::Request)>;

/// Starts a [`FakeProvider`] for `P`, with the channel of requests it receives.
pub fn fake_provider<P: Port>() -> (ActorRef<FakeProvider<P>>, Requests<P>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (spawn::<FakeProvider<P>>(tx), rx)
}
