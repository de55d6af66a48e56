//! `EXISTS key [key ...]`: how many of the keys exist (a key named twice counts twice, as in
//! Redis). One `Get` per key.

use super::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let keys = req.arity(1, None)?;
    store::check_keys(keys)?;
    let mut count = 0;
    for key in keys {
        count += i64::from(store::get(svc, key).await?.is_some());
    }
    Ok(Frame::Integer(count))
}
