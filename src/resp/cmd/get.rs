//! `GET key`: the value, or nil (`$-1`) when the key is absent.

use super::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let [key] = req.exactly()?;
    store::check_keys([key])?;
    Ok(store::get(svc, key).await?.map_or(Frame::Null, Frame::Bulk))
}
