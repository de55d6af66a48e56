//! The [`Gateway`] component: the actor side of the in-process gateway.
//!
//! It requires [`KvPort`] and is the only place the gateway touches the port. A
//! [`GatewayService`](super::GatewayService) call hands it a [`Submit`] (by `tell`, so no
//! component ever waits on another) carrying a one-shot reply channel; the actor triggers the
//! command and parks the channel under the command's client id until the matching
//! [`KvReply`] comes back.

use std::collections::HashMap;

use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::ids::ClientId;
use kv_ports::kv::{KvCommand, KvError, KvPort, KvReply, KvResult};
use kv_ports::port::{Ind, RequiredPort};
use tokio::sync::oneshot;

/// What the gateway actor tells a waiting caller about one attempt.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The router answered the command.
    Answered(Result<KvResult, KvError>),
    /// No provider of `KvPort` took the command: it surely did not reach a replica on this
    /// attempt. Kept apart from the router's own `NotLeader` so that a command that never
    /// left the gateway ends `Unavailable`, not `Unknown`.
    NotConnected,
}

/// The in-process gateway component; see the [module documentation](super).
///
/// Its state is only the waiting callers: at most one per client id, because the caller side
/// leases a distinct session for every command in flight, exactly as the replicas expect.
#[derive(Actor, Default)]
pub struct Gateway {
    kv: RequiredPort<KvPort>,
    /// Each session's command in flight: its seq and the caller waiting for the answer.
    pending: HashMap<ClientId, (u64, oneshot::Sender<Outcome>)>,
}

kv_ports::component!(Gateway);
kv_ports::requires!(Gateway: KvPort = kv);

/// From a [`GatewayService`](super::GatewayService): run `cmd` and answer on `reply`.
///
/// A retry is just another `Submit` with the same id; its channel replaces the earlier one,
/// whose caller has given up on it.
#[derive(Debug)]
pub(crate) struct Submit {
    /// The command, with the id every attempt shares.
    pub cmd: KvCommand,
    /// Where the outcome goes.
    pub reply: oneshot::Sender<Outcome>,
}

impl Message<Submit> for Gateway {
    type Reply = ();

    async fn handle(&mut self, msg: Submit, _: &mut Context<Self, ()>) {
        let Submit { cmd, reply } = msg;
        if reply.is_closed() {
            // The caller is gone (its connection closed, its deadline passed): nobody would
            // read the answer, so the command need not run at all.
            return;
        }
        let id = cmd.id;
        self.pending.insert(id.client, (id.seq, reply));
        if !self.kv.trigger(cmd) {
            // Not connected yet, or the provider has stopped.
            if let Some((_, reply)) = self.pending.remove(&id.client) {
                let _ = reply.send(Outcome::NotConnected);
            }
        }
    }
}

impl Message<Ind<KvPort>> for Gateway {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<KvPort>, _: &mut Context<Self, ()>) {
        let KvReply { id, result } = ind.event;
        let Some(&(seq, _)) = self.pending.get(&id.client) else {
            return;
        };
        // An answer to an older command of a reused session is stale: its caller already got
        // `Unknown` and the session has moved on.
        if seq != id.seq {
            return;
        }
        if let Some((_, reply)) = self.pending.remove(&id.client) {
            // A caller that stopped waiting just drops the answer.
            let _ = reply.send(Outcome::Answered(result));
        }
    }
}
