//! Which command table a server speaks over the shared codec.

use super::cmd::{self, Outcome};
use super::error::ProtocolError;
use super::frame::Frame;
use super::request::Request;
use super::seed002;
use crate::service::KvService;

/// The command set and error style of a RESP server. Both share the codec, connection
/// handling and limits; they differ only in which commands exist and how answers look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// Redis-compatible commands (`GET`, `SET`, `DEL`, `MGET`, ..., plus `CAS`), so that
    /// `redis-cli` and `redis-benchmark` work unmodified. Errors are `-ERR message`.
    #[default]
    Redis,
    /// Seed 002's coordinator dialect: case-sensitive `SET key word...`, `GET key` (answered
    /// as an array of words, a missing key as `*1\r\n$3\r\nnil\r\n`) and `DEL key...`; every
    /// error is exactly `-ERROR\r\n`.
    Seed002,
}

impl Dialect {
    /// Runs one request against `service`.
    pub(crate) async fn execute(self, req: &Request, service: &dyn KvService) -> Outcome {
        match self {
            Dialect::Redis => cmd::execute(req, service).await,
            Dialect::Seed002 => seed002::execute(req, service).await,
        }
    }

    /// An error reply in this dialect's style; `message` is the Redis text (`ERR ...`).
    pub(crate) fn error(self, message: String) -> Frame {
        match self {
            Dialect::Redis => Frame::Error(message),
            Dialect::Seed002 => Frame::Error("ERROR".into()),
        }
    }

    /// The reply sent before closing a connection that broke the protocol.
    pub(crate) fn protocol_error(self, e: &ProtocolError) -> Frame {
        self.error(format!("ERR {e}"))
    }
}
