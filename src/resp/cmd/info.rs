//! `INFO [section ...]`: a small `# Server` section, enough for tools that read the version.

use bytes::Bytes;

use super::CmdError;
use crate::resp::frame::Frame;
use crate::resp::request::Request;

/// The Redis version announced: 7.0 semantics for the commands served, marked as kv.
pub(crate) const REDIS_VERSION: &str = "7.0.0-kv";

pub(crate) fn run(_req: &Request) -> Result<Frame, CmdError> {
    let text = format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\n\
         kv_version:{}\r\narch_bits:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        usize::BITS,
    );
    Ok(Frame::Bulk(Bytes::from(text)))
}
