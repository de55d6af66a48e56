//! `PING [message]`: `+PONG`, or the message back as a bulk string.

use super::CmdError;
use crate::resp::frame::Frame;
use crate::resp::request::Request;

pub(crate) fn run(req: &Request) -> Result<Frame, CmdError> {
    Ok(match req.arity(0, Some(1))? {
        [message] => Frame::Bulk(message.clone()),
        _ => Frame::simple("PONG"),
    })
}
