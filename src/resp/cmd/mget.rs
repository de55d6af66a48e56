//! `MGET key [key ...]`: an array of values, nil for absent keys. One `Get` per key, in order;
//! each read is linearizable on its own, the set of reads is not one snapshot.

use super::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let keys = req.arity(1, None)?;
    store::check_keys(keys)?;
    let mut values = Vec::with_capacity(keys.len());
    for key in keys {
        values.push(store::get(svc, key).await?.map_or(Frame::Null, Frame::Bulk));
    }
    Ok(Frame::Array(values))
}
