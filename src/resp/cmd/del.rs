//! `DEL key [key ...]`: removes each key (one `Delete` each, in order) and answers how many
//! existed. Not atomic across keys: each key's removal is its own linearizable operation.

use super::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let keys = req.arity(1, None)?;
    Ok(Frame::Integer(store::delete_all(svc, keys).await?))
}
