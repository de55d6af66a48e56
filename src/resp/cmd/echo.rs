//! `ECHO message`: the message back as a bulk string.

use super::CmdError;
use crate::resp::frame::Frame;
use crate::resp::request::Request;

pub(crate) fn run(req: &Request) -> Result<Frame, CmdError> {
    let [message] = req.exactly()?;
    Ok(Frame::Bulk(message.clone()))
}
