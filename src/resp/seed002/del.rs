//! `DEL key [key ...]`: removes the keys and answers how many existed (`:N`).

use crate::resp::cmd::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let keys = req.arity(1, None)?;
    Ok(Frame::Integer(store::delete_all(svc, keys).await?))
}
