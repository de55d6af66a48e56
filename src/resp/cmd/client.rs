//! `CLIENT subcommand ...`: clients announce themselves (`SETNAME`, `SETINFO`) on connect;
//! the store keeps no per-client settings, so everything is acknowledged with `+OK`, except
//! `GETNAME`, which has nothing to return (nil).

use super::CmdError;
use crate::resp::frame::Frame;
use crate::resp::request::Request;

pub(crate) fn run(req: &Request) -> Result<Frame, CmdError> {
    let args = req.arity(1, None)?;
    Ok(if args[0].eq_ignore_ascii_case(b"GETNAME") {
        Frame::Null
    } else {
        Frame::simple("OK")
    })
}
