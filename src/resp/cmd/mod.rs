//! The Redis dialect's command table: one command per file.
//!
//! Each command checks its arity and argument sizes first, so that a bad request changes
//! nothing, then turns into [`KvOp`](kv_ports::kv::KvOp)s run one after another through the
//! [`KvService`]. Every command returns a [`Frame`] or a [`CmdError`]; the error's text is the
//! reply.

mod cas;
mod client;
mod command;
mod config;
mod del;
mod echo;
mod error;
mod exists;
mod get;
mod hello;
mod info;
mod mget;
mod mset;
mod ping;
mod quit;
mod set;
pub(crate) mod store;

pub(crate) use error::CmdError;

use super::frame::Frame;
use super::request::Request;
use crate::service::KvService;

/// What the connection does after a command: send `reply`, then go on or close.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The reply to send.
    pub(crate) reply: Frame,
    /// Close the connection once the reply is flushed (`QUIT`, protocol errors).
    pub(crate) close: bool,
}

impl Outcome {
    /// Reply and keep the connection.
    pub(crate) fn reply(reply: Frame) -> Outcome {
        Outcome {
            reply,
            close: false,
        }
    }

    /// Reply, then close.
    pub(crate) fn close(reply: Frame) -> Outcome {
        Outcome { reply, close: true }
    }
}

/// Longer than any command name; longer names are unknown without a closer look.
const NAME_BUF: usize = 16;

/// The name in upper case, in `buf` (no allocation per request); empty if too long.
fn upper_name<'a>(name: &[u8], buf: &'a mut [u8; NAME_BUF]) -> &'a [u8] {
    let Some(upper) = buf.get_mut(..name.len()) else {
        return b"";
    };
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    upper
}

/// Runs one Redis-dialect request. Names are case-insensitive, as in Redis.
pub(crate) async fn execute(req: &Request, svc: &dyn KvService) -> Outcome {
    let mut buf = [0u8; NAME_BUF];
    let result = match upper_name(req.name(), &mut buf) {
        b"GET" => get::run(req, svc).await,
        b"SET" => set::run(req, svc).await,
        b"DEL" => del::run(req, svc).await,
        b"EXISTS" => exists::run(req, svc).await,
        b"MGET" => mget::run(req, svc).await,
        b"MSET" => mset::run(req, svc).await,
        b"CAS" => cas::run(req, svc).await,
        b"PING" => ping::run(req),
        b"ECHO" => echo::run(req),
        b"QUIT" => return quit::run(req),
        b"COMMAND" => command::run(req),
        b"CONFIG" => config::run(req),
        b"CLIENT" => client::run(req),
        b"INFO" => info::run(req),
        b"HELLO" => hello::run(req),
        _ => Err(CmdError::unknown_command(req)),
    };
    Outcome::reply(result.unwrap_or_else(|e| Frame::Error(e.to_string())))
}
