//! `COMMAND [subcommand ...]`: redis-cli asks for command docs at start (for hints); an empty
//! answer (`*0`, or `:0` for `COMMAND COUNT`) makes it carry on without them.

use super::CmdError;
use crate::resp::frame::Frame;
use crate::resp::request::Request;

pub(crate) fn run(req: &Request) -> Result<Frame, CmdError> {
    Ok(match req.args().first() {
        Some(sub) if sub.eq_ignore_ascii_case(b"COUNT") => Frame::Integer(0),
        _ => Frame::Array(Vec::new()),
    })
}
