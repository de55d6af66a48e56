//! Components and their wiring.
//!
//! A component is a kameo actor that owns [`ProvidedPort`]s and [`RequiredPort`]s as fields and
//! declares them with [`Provides`] and [`Requires`]. [`connect`] joins a provider and a requirer
//! of the same port; its bounds make a mis-wired connection a compile error:
//!
//! ```
//! use kameo::prelude::*;
//! use kv_ports::component::{connect, spawn, Provides, Requires};
//! use kv_ports::port::{Ind, Port, ProvidedPort, Req, RequiredPort};
//!
//! struct Ping;
//! impl Port for Ping {
//!     type Request = u32;
//!     type Indication = u32;
//! }
//!
//! #[derive(Actor, Default)]
//! struct Server { ping: ProvidedPort<Ping> }
//! impl Provides<Ping> for Server {
//!     fn provided(&mut self) -> &mut ProvidedPort<Ping> { &mut self.ping }
//! }
//! impl Message<Req<Ping>> for Server {
//!     type Reply = ();
//!     async fn handle(&mut self, r: Req<Ping>, _: &mut Context<Self, ()>) {
//!         self.ping.answer(r.from, r.event + 1);
//!     }
//! }
//! kv_ports::component!(Server);
//!
//! #[derive(Actor, Default)]
//! struct Client { ping: RequiredPort<Ping> }
//! impl Requires<Ping> for Client {
//!     fn required(&mut self) -> &mut RequiredPort<Ping> { &mut self.ping }
//! }
//! impl Message<Ind<Ping>> for Client {
//!     type Reply = ();
//!     async fn handle(&mut self, _: Ind<Ping>, _: &mut Context<Self, ()>) {}
//! }
//! kv_ports::component!(Client);
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let server = spawn::<Server>(Server::default());
//! let client = spawn::<Client>(Client::default());
//! connect::<Ping, _, _>(&server, &client).await.unwrap();
//! # });
//! ```
//!
//! Wiring the other way round (a client as provider) does not compile, because `Client` does
//! not provide `Ping`:
//!
//! ```compile_fail,E0277
//! # use kameo::prelude::*;
//! # use kv_ports::component::{connect, spawn, Provides, Requires};
//! # use kv_ports::port::{Ind, Port, ProvidedPort, Req, RequiredPort};
//! # struct Ping;
//! # impl Port for Ping { type Request = u32; type Indication = u32; }
//! # #[derive(Actor, Default)]
//! # struct Server { ping: ProvidedPort<Ping> }
//! # impl Provides<Ping> for Server {
//! #     fn provided(&mut self) -> &mut ProvidedPort<Ping> { &mut self.ping }
//! # }
//! # impl Message<Req<Ping>> for Server {
//! #     type Reply = ();
//! #     async fn handle(&mut self, r: Req<Ping>, _: &mut Context<Self, ()>) {}
//! # }
//! # kv_ports::component!(Server);
//! # #[derive(Actor, Default)]
//! # struct Client { ping: RequiredPort<Ping> }
//! # impl Requires<Ping> for Client {
//! #     fn required(&mut self) -> &mut RequiredPort<Ping> { &mut self.ping }
//! # }
//! # impl Message<Ind<Ping>> for Client {
//! #     type Reply = ();
//! #     async fn handle(&mut self, _: Ind<Ping>, _: &mut Context<Self, ()>) {}
//! # }
//! # kv_ports::component!(Client);
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let server = spawn::<Server>(Server::default());
//! let client = spawn::<Client>(Client::default());
//! connect::<Ping, _, _>(&client, &server).await.unwrap();
//! # });
//! ```
//!
//! Nor does connecting two components through a port neither of them has:
//!
//! ```compile_fail,E0277
//! # use kameo::prelude::*;
//! # use kv_ports::component::{connect, spawn, Provides, Requires};
//! # use kv_ports::port::{Ind, Port, ProvidedPort, Req, RequiredPort};
//! # struct Ping;
//! # impl Port for Ping { type Request = u32; type Indication = u32; }
//! struct Pong;
//! impl Port for Pong { type Request = String; type Indication = String; }
//! # #[derive(Actor, Default)]
//! # struct Server { ping: ProvidedPort<Ping> }
//! # impl Provides<Ping> for Server {
//! #     fn provided(&mut self) -> &mut ProvidedPort<Ping> { &mut self.ping }
//! # }
//! # impl Message<Req<Ping>> for Server {
//! #     type Reply = ();
//! #     async fn handle(&mut self, r: Req<Ping>, _: &mut Context<Self, ()>) {}
//! # }
//! # kv_ports::component!(Server);
//! # #[derive(Actor, Default)]
//! # struct Client { ping: RequiredPort<Ping> }
//! # impl Requires<Ping> for Client {
//! #     fn required(&mut self) -> &mut RequiredPort<Ping> { &mut self.ping }
//! # }
//! # impl Message<Ind<Ping>> for Client {
//! #     type Reply = ();
//! #     async fn handle(&mut self, _: Ind<Ping>, _: &mut Context<Self, ()>) {}
//! # }
//! # kv_ports::component!(Client);
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let server = spawn::<Server>(Server::default());
//! let client = spawn::<Client>(Client::default());
//! connect::<Pong, _, _>(&server, &client).await.unwrap();
//! # });
//! ```

use kameo::actor::{ActorRef, Spawn};
use kameo::error::SendError;
use kameo::mailbox;
use kameo::message::Message;
use kameo::Actor;

use crate::port::{ConnectionId, Ind, Port, ProvidedPort, Req, RequiredPort};

/// A component that provides port `P`: it handles `P`'s requests and triggers its indications.
pub trait Provides<P: Port>: Component + Message<Req<P>, Reply = ()> {
    /// The port field the component triggers indications through.
    fn provided(&mut self) -> &mut ProvidedPort<P>;
}

/// A component that requires port `P`: it triggers `P`'s requests and handles its indications.
pub trait Requires<P: Port>: Component + Message<Ind<P>, Reply = ()> {
    /// The port field the component triggers requests through.
    fn required(&mut self) -> &mut RequiredPort<P>;
}

/// A change to a component's own port fields, run inside the component so its state stays
/// owned by it. Declared for each component with [`component!`](crate::component!).
pub struct Wire<A>(Box<dyn FnOnce(&mut A) + Send>);

impl<A> Wire<A> {
    /// Runs the wiring step on the component's state.
    pub fn apply(self, component: &mut A) {
        (self.0)(component)
    }
}

/// A kameo actor that can be wired through ports.
pub trait Component: Actor + Message<Wire<Self>, Reply = ()> {}

/// Declares a type a [`Component`], letting [`connect`] wire its port fields.
#[macro_export]
macro_rules! component {
    ($component:ty) => {
        impl ::kameo::message::Message<$crate::component::Wire<$component>> for $component {
            type Reply = ();
            async fn handle(
                &mut self,
                wire: $crate::component::Wire<$component>,
                _ctx: &mut ::kameo::message::Context<Self, ()>,
            ) {
                wire.apply(self);
            }
        }
        impl $crate::component::Component for $component {}
    };
}

/// Declares the ports a component provides and the fields that hold them:
/// `provides!(Epfd: FailureDetectorPort = fd);`
#[macro_export]
macro_rules! provides {
    ($component:ty : $($port:ty = $field:ident),+ $(,)?) => {
        $(
            impl $crate::component::Provides<$port> for $component {
                fn provided(&mut self) -> &mut $crate::port::ProvidedPort<$port> {
                    &mut self.$field
                }
            }
        )+
    };
}

/// Declares the ports a component requires and the fields that hold them:
/// `requires!(Epfd: NetworkPort = net, TimerPort = timer);`
#[macro_export]
macro_rules! requires {
    ($component:ty : $($port:ty = $field:ident),+ $(,)?) => {
        $(
            impl $crate::component::Requires<$port> for $component {
                fn required(&mut self) -> &mut $crate::port::RequiredPort<$port> {
                    &mut self.$field
                }
            }
        )+
    };
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// One of the two components has already stopped.
    #[error("cannot connect port {port}: component {component} has stopped")]
    Stopped {
        /// The port being wired.
        port: &'static str,
        /// The component that is gone.
        component: &'static str,
    },
}

/// Connects `provider`'s port `P` to `requirer`'s port `P`.
///
/// Both ends hold the other weakly. The wiring is queued in each mailbox before anything sent
/// after this call returns, so a request triggered right after `connect` finds its provider.
pub async fn connect<P, A, B>(
    provider: &ActorRef<A>,
    requirer: &ActorRef<B>,
) -> Result<ConnectionId, ConnectError>
where
    P: Port,
    A: Provides<P>,
    B: Requires<P>,
{
    let id = ConnectionId::fresh();
    let to_requirer = requirer.clone().recipient::<Ind<P>>().downgrade();
    let to_provider = provider.clone().recipient::<Req<P>>().downgrade();
    let wire_provider = Wire::<A>(Box::new(move |a: &mut A| {
        a.provided().attach(id, to_requirer);
    }));
    let wire_requirer = Wire::<B>(Box::new(move |b: &mut B| {
        b.required().attach(id, to_provider);
    }));
    provider
        .tell(wire_provider)
        .await
        .map_err(|e| stopped::<P, A>(e))?;
    requirer
        .tell(wire_requirer)
        .await
        .map_err(|e| stopped::<P, B>(e))?;
    Ok(id)
}

fn stopped<P, C>(_: SendError<impl Send, impl Send>) -> ConnectError {
    ConnectError::Stopped {
        port: std::any::type_name::<P>(),
        component: std::any::type_name::<C>(),
    }
}

/// Starts a component with an unbounded mailbox.
///
/// Protocol components never wait for each other's mailbox space: a bounded mailbox in a cycle
/// of components can deadlock. Back-pressure belongs at the edges of the node instead.
pub fn spawn<A: Actor>(args: A::Args) -> ActorRef<A> {
    A::spawn_with_mailbox(args, mailbox::unbounded())
}

/// Sent by the parent to each component once all its ports are connected: the moment to
/// subscribe, schedule the first timeouts and say hello. Before it, a component's requests
/// could reach no provider.
#[derive(Copy, Clone, Debug, Default)]
pub struct Start;
