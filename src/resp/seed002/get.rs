//! `GET key`: the value split on spaces, as an array of bulk strings; a missing key is the
//! seed's one-element array holding the word `nil` (`*1\r\n$3\r\nnil\r\n`).

use crate::resp::cmd::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let [key] = req.exactly()?;
    store::check_keys([key])?;
    Ok(match store::get(svc, key).await? {
        Some(value) => Frame::Array(
            value
                .split(|&b| b == b' ')
                .map(|word| Frame::Bulk(value.slice_ref(word)))
                .collect(),
        ),
        None => Frame::Array(vec![Frame::bulk_static("nil")]),
    })
}
