//! `HELLO [protover [AUTH user pass] [SETNAME name]]`: only RESP2 is spoken, so `HELLO`,
//! `HELLO 2` get Redis's RESP2 answer (field/value pairs) and `HELLO 3` gets `-NOPROTO`,
//! after which clients such as redis-cli fall back to RESP2.

use bytes::Bytes;

use super::info::REDIS_VERSION;
use super::CmdError;
use crate::resp::frame::Frame;
use crate::resp::parse::parse_int;
use crate::resp::request::Request;

pub(crate) fn run(req: &Request) -> Result<Frame, CmdError> {
    if let Some(version) = req.args().first() {
        match parse_int(version) {
            Some(2) => {}
            Some(_) => return Err(CmdError::NoProto),
            None => return Err(CmdError::BadProtoVersion),
        }
    }
    let text = |s: &'static str| Frame::bulk_static(s);
    Ok(Frame::Array(vec![
        text("server"),
        text("redis"),
        text("version"),
        Frame::Bulk(Bytes::from_static(REDIS_VERSION.as_bytes())),
        text("proto"),
        Frame::Integer(2),
        text("id"),
        Frame::Integer(0),
        text("mode"),
        text("standalone"),
        text("role"),
        text("master"),
        text("modules"),
        Frame::Array(Vec::new()),
    ]))
}
