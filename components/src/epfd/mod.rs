//! The EPFD component: provides [`FailureDetectorPort`], requires [`NetworkPort`] and
//! [`TimerPort`]. The logic is in [`core`]; this shell only moves events in and out.

pub mod core;

use std::convert::Infallible;

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::component::Start;
use kv_ports::fd::{FailureDetectorPort, FdIndication, FdRequest};
use kv_ports::network::{NetIndication, NetRequest, NetworkPort, Topic};
use kv_ports::port::{Ind, ProvidedPort, Req, RequiredPort};
use kv_ports::timer::{TimerPort, Timers};

use self::core::{EpfdConfig, EpfdCore, EpfdMsg, EpfdOutput};
use crate::wire::{decode, encode};

/// The failure detector of one node.
pub struct Epfd {
    core: EpfdCore,
    fd: ProvidedPort<FailureDetectorPort>,
    net: RequiredPort<NetworkPort>,
    timer: RequiredPort<TimerPort>,
    timers: Timers<()>,
}

impl Actor for Epfd {
    type Args = EpfdConfig;
    type Error = Infallible;

    async fn on_start(config: EpfdConfig, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Epfd {
            core: EpfdCore::new(config),
            fd: ProvidedPort::default(),
            net: RequiredPort::default(),
            timer: RequiredPort::default(),
            timers: Timers::default(),
        })
    }
}

kv_ports::component!(Epfd);

kv_ports::provides!(Epfd: FailureDetectorPort = fd);
kv_ports::requires!(Epfd: NetworkPort = net, TimerPort = timer);

impl Message<Start> for Epfd {
    type Reply = ();

    async fn handle(&mut self, _: Start, _: &mut Context<Self, ()>) {
        self.net
            .trigger(NetRequest::Subscribe(Topic::FailureDetector));
        self.schedule_round();
    }
}

impl Message<Req<FailureDetectorPort>> for Epfd {
    type Reply = ();

    async fn handle(&mut self, req: Req<FailureDetectorPort>, _: &mut Context<Self, ()>) {
        let FdRequest::Monitor(nodes) = req.event;
        let out = self.core.monitor(nodes);
        self.apply(out);
    }
}

impl Message<Ind<NetworkPort>> for Epfd {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<NetworkPort>, _: &mut Context<Self, ()>) {
        let NetIndication::Deliver {
            from,
            topic: Topic::FailureDetector,
            payload,
        } = ind.event
        else {
            return;
        };
        if let Some(msg) = decode::<EpfdMsg>(&payload) {
            let out = self.core.handle(from, msg);
            self.apply(out);
        }
    }
}

impl Message<Ind<TimerPort>> for Epfd {
    type Reply = ();

    async fn handle(&mut self, ind: Ind<TimerPort>, _: &mut Context<Self, ()>) {
        if self.timers.fired(ind.event).is_some() {
            let out = self.core.timeout();
            self.apply(out);
            self.schedule_round();
        }
    }
}

impl Epfd {
    /// Rounds use one-shot timeouts because the period changes after false suspicions.
    fn schedule_round(&mut self) {
        let delay = self.core.delay();
        self.timers.once(&mut self.timer, delay, ());
    }

    fn apply(&mut self, outputs: Vec<EpfdOutput>) {
        for output in outputs {
            match output {
                EpfdOutput::Send(to, msg) => {
                    let payload = encode(&msg);
                    let topic = Topic::FailureDetector;
                    self.net.trigger(NetRequest::Send { to, topic, payload });
                }
                EpfdOutput::Suspect(node) => self.fd.trigger(FdIndication::Suspect(node)),
                EpfdOutput::Restore(node) => self.fd.trigger(FdIndication::Restore(node)),
            }
        }
    }
}

#[cfg(test)]
mod tests;
