//! The BEB component: provides [`BroadcastPort`], requires [`NetworkPort`]. The logic is in
//! [`core`]; this shell only moves events in and out.

pub mod core;

use std::collections::HashMap;
use std::convert::Infallible;

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::broadcast::{BroadcastDeliver, BroadcastPort, BroadcastRequest};
use kv_ports::component::Start;
use kv_ports::ids::NodeId;
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{ConnectionId, Ind, ProvidedPort, Req, RequiredPort};

use self::core::{BebCore, BebMsg, BebOutput};
use crate::wire::{decode, encode};

/// Best-effort broadcast for one node.
pub struct Beb {
    core: BebCore,
    broadcast: ProvidedPort<BroadcastPort>,
    net: RequiredPort<NetworkPort>,
    subscribers: HashMap<Topic, Vec<ConnectionId>>,
}

impl Actor for Beb {
    type Args = NodeId;
    type Error = Infallible;

    async fn on_start(me: NodeId, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Beb {
            core: BebCore::new(me),
            broadcast: ProvidedPort::default(),
            net: RequiredPort::default(),
            subscribers: HashMap::new(),
        })
    }
}

kv_ports::component!(Beb);

kv_ports::provides!(Beb: BroadcastPort = broadcast);
kv_ports::requires!(Beb: NetworkPort = net);

impl Message<Start> for Beb {
    type Reply = ();

    async fn handle(&mut self, _: Start, _: &mut Context<Self, ()>) {
        self.net.trigger(NetRequest::Subscribe(Topic::Broadcast));
    }
}

impl Message<Req<BroadcastPort>> for Beb {
    type Reply = ();

    async fn handle(&mut self, req: Req<BroadcastPort>, _: &mut Context<Self, ()>) {
        match req.event {
            BroadcastRequest::Members(members) => self.core.set_members(members),
            BroadcastRequest::Subscribe(topic) => {
                self.subscribers.entry(topic).or_default().push(req.from)
            }
            BroadcastRequest::Broadcast { topic, payload } => {
                let out = self.core.broadcast(BebMsg { topic, payload });
                out.into_iter().for_each(|o| self.apply(o));
            }
        }
    }
}

impl Message<Ind<NetworkPort>> for Beb {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<NetworkPort>, _: &mut Context<Self, ()>) {
        let NetIndication::Deliver {
            from,
            topic: Topic::Broadcast,
            payload,
        } = ind.event
        else {
            return;
        };
        if let Some(msg) = decode::<BebMsg>(&payload) {
            let out = self.core.handle(from, msg);
            self.apply(out);
        }
    }
}

impl Beb {
    fn apply(&mut self, output: BebOutput) {
        match output {
            BebOutput::Send(to, msg) => {
                let payload = encode(&msg);
                self.net.trigger(NetRequest::Send {
                    to,
                    topic: Topic::Broadcast,
                    payload,
                });
            }
            BebOutput::Deliver(from, msg) => {
                let Some(subscribers) = self.subscribers.get(&msg.topic) else {
                    return;
                };
                for &conn in subscribers {
                    let event = BroadcastDeliver {
                        from,
                        topic: msg.topic,
                        payload: msg.payload.clone(),
                    };
                    self.broadcast.answer(conn, event);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
