//! Messages per second through a chain of components wired by ports:
//! source → relay → relay → sink, each hop a port request delivered to the next actor's
//! mailbox. Run with `cargo run --release -p kv-ports --example chain_bench`.

use std::convert::Infallible;
use std::time::Instant;

use kameo::actor::ActorRef;
use kameo::message::{Context, Message};
use kameo::Actor;
use kv_ports::component::{connect, spawn, Provides, Requires};
use kv_ports::port::{Ind, Port, ProvidedPort, Req, RequiredPort};
use tokio::sync::oneshot;

struct Pipe;

impl Port for Pipe {
    type Request = u64;
    type Indication = ();
}

/// Emits numbers downstream in slices, so its mailbox stays responsive.
struct Source {
    down: RequiredPort<Pipe>,
}

struct Emit {
    from: u64,
    to: u64,
}

const SLICE: u64 = 4096;

impl Actor for Source {
    type Args = ();
    type Error = Infallible;
    async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Source {
            down: RequiredPort::default(),
        })
    }
}

impl Message<Emit> for Source {
    type Reply = ();
    async fn handle(&mut self, emit: Emit, ctx: &mut Context<Self, ()>) {
        let end = emit.to.min(emit.from + SLICE);
        for i in emit.from..end {
            self.down.trigger(i);
        }
        if end < emit.to {
            let _ = ctx
                .actor_ref()
                .tell(Emit {
                    from: end,
                    to: emit.to,
                })
                .try_send();
        }
    }
}

impl Message<Ind<Pipe>> for Source {
    type Reply = ();
    async fn handle(&mut self, _: Ind<Pipe>, _: &mut Context<Self, ()>) {}
}

kv_ports::component!(Source);

impl Requires<Pipe> for Source {
    fn required(&mut self) -> &mut RequiredPort<Pipe> {
        &mut self.down
    }
}

/// Passes each request on.
struct Relay {
    up: ProvidedPort<Pipe>,
    down: RequiredPort<Pipe>,
}

impl Actor for Relay {
    type Args = ();
    type Error = Infallible;
    async fn on_start(_: (), _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Relay {
            up: ProvidedPort::default(),
            down: RequiredPort::default(),
        })
    }
}

impl Message<Req<Pipe>> for Relay {
    type Reply = ();
    async fn handle(&mut self, req: Req<Pipe>, _: &mut Context<Self, ()>) {
        self.down.trigger(req.event);
    }
}

impl Message<Ind<Pipe>> for Relay {
    type Reply = ();
    async fn handle(&mut self, _: Ind<Pipe>, _: &mut Context<Self, ()>) {}
}

kv_ports::component!(Relay);

impl Provides<Pipe> for Relay {
    fn provided(&mut self) -> &mut ProvidedPort<Pipe> {
        &mut self.up
    }
}

impl Requires<Pipe> for Relay {
    fn required(&mut self) -> &mut RequiredPort<Pipe> {
        &mut self.down
    }
}

/// Counts arrivals and reports when all have come.
struct Sink {
    up: ProvidedPort<Pipe>,
    left: u64,
    done: Option<oneshot::Sender<()>>,
}

impl Actor for Sink {
    type Args = (u64, oneshot::Sender<()>);
    type Error = Infallible;
    async fn on_start((left, done): Self::Args, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(Sink {
            up: ProvidedPort::default(),
            left,
            done: Some(done),
        })
    }
}

impl Message<Req<Pipe>> for Sink {
    type Reply = ();
    async fn handle(&mut self, _: Req<Pipe>, _: &mut Context<Self, ()>) {
        self.left -= 1;
        if self.left == 0 {
            if let Some(done) = self.done.take() {
                let _ = done.send(());
            }
        }
    }
}

kv_ports::component!(Sink);

impl Provides<Pipe> for Sink {
    fn provided(&mut self) -> &mut ProvidedPort<Pipe> {
        &mut self.up
    }
}

async fn run(messages: u64) -> f64 {
    let (done_tx, done_rx) = oneshot::channel();
    let source = spawn::<Source>(());
    let first = spawn::<Relay>(());
    let second = spawn::<Relay>(());
    let sink = spawn::<Sink>((messages, done_tx));
    connect::<Pipe, _, _>(&first, &source).await.unwrap();
    connect::<Pipe, _, _>(&second, &first).await.unwrap();
    connect::<Pipe, _, _>(&sink, &second).await.unwrap();
    let start = Instant::now();
    source
        .tell(Emit {
            from: 0,
            to: messages,
        })
        .await
        .unwrap();
    done_rx.await.unwrap();
    messages as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let messages = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rate = current.block_on(run(messages));
    println!(
        "current_thread: {messages} messages through 3 hops: {:.2} M msg/s",
        rate / 1e6
    );
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rate = multi.block_on(run(messages));
    println!(
        "multi_thread(2): {messages} messages through 3 hops: {:.2} M msg/s",
        rate / 1e6
    );
}
