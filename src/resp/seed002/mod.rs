//! Seed 002's RESP dialect, as its coordinator spoke it: `SET`, `GET`, `DEL`, nothing else.
//!
//! The seed says the commands are case sensitive, so only the upper-case names are accepted;
//! `set` is an unknown command like any other. Every failure (unknown command, wrong arity,
//! oversized key, store unavailable, unknown outcome, protocol error) is exactly `-ERROR\r\n`,
//! since the seed's clients match on that string.

mod del;
mod get;
mod set;

use super::cmd::{CmdError, Outcome};
use super::frame::Frame;
use super::request::Request;
use crate::service::KvService;

/// Runs one seed 002 request.
pub(crate) async fn execute(req: &Request, svc: &dyn KvService) -> Outcome {
    let result = match req.name() {
        b"SET" => set::run(req, svc).await,
        b"GET" => get::run(req, svc).await,
        b"DEL" => del::run(req, svc).await,
        _ => Err(CmdError::unknown_command(req)),
    };
    Outcome::reply(result.unwrap_or_else(|_| Frame::Error("ERROR".into())))
}
