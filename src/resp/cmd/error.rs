//! Why a command failed, worded as the `-ERR` reply Redis clients expect.

use kv_ports::kv::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

use crate::resp::request::Request;
use crate::service::ServiceError;

/// A failed command. The `Display` text is the whole error reply (after the `-`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CmdError {
    /// Too few or too many arguments (the lower-case command name).
    #[error("ERR wrong number of arguments for '{0}' command")]
    Arity(String),
    /// No such command.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand {
        /// The name as sent (truncated).
        name: String,
        /// The first arguments, quoted, as Redis lists them.
        args: String,
    },
    /// Options that do not fit together or are not known.
    #[error("ERR syntax error")]
    Syntax,
    /// A Redis feature this store deliberately lacks (say, expiry).
    #[error("ERR {0} is not supported by kv")]
    Unsupported(String),
    /// A key longer than [`MAX_KEY_BYTES`].
    #[error("ERR key too large: {0} bytes, the limit is {MAX_KEY_BYTES}")]
    KeyTooLarge(usize),
    /// A value longer than [`MAX_VALUE_BYTES`].
    #[error("ERR value too large: {0} bytes, the limit is {MAX_VALUE_BYTES}")]
    ValueTooLarge(usize),
    /// `SET ... XX` lost every compare-and-swap race; nothing was written.
    #[error("ERR SET XX: the key kept changing concurrently; nothing was written, retry")]
    Contended,
    /// `HELLO` asked for a protocol other than RESP2.
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    /// `HELLO`'s version is not a number.
    #[error("ERR Protocol version is not an integer or out of range")]
    BadProtoVersion,
    /// The operation may or may not have taken effect.
    #[error("ERR timeout: outcome unknown")]
    OutcomeUnknown,
    /// The operation did not take effect: no leader, no quorum, shutting down.
    #[error("ERR unavailable: {0}")]
    Unavailable(String),
    /// The store refused the operation.
    #[error("ERR {0}")]
    Rejected(String),
    /// The store answered with a result of the wrong kind (a bug behind the seam).
    #[error("ERR internal error: unexpected result {0}")]
    Internal(String),
}

impl CmdError {
    /// Redis 7's unknown-command error: the name and up to the first few arguments, quoted.
    pub(crate) fn unknown_command(req: &Request) -> CmdError {
        let lossy = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(128)]).into_owned();
        let args = req
            .args()
            .iter()
            .take(8)
            .map(|a| format!("'{}' ", lossy(a)))
            .collect();
        CmdError::UnknownCommand {
            name: lossy(req.name()),
            args,
        }
    }
}

impl From<ServiceError> for CmdError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unknown(_) => CmdError::OutcomeUnknown,
            ServiceError::Unavailable(why) => CmdError::Unavailable(why),
            ServiceError::Rejected(why) => CmdError::Rejected(why),
        }
    }
}
