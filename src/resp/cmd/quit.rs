//! `QUIT`: `+OK`, then the server closes the connection (after earlier replies).

use super::Outcome;
use crate::resp::frame::Frame;
use crate::resp::request::Request;

pub(crate) fn run(_req: &Request) -> Outcome {
    Outcome::close(Frame::simple("OK"))
}
