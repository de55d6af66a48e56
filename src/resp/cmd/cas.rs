//! `CAS key expected new` (an extension): installs `new` if the key holds `expected`;
//! `:1` if it swapped, `:0` if not (including when the key is absent).

use super::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let [key, expected, new] = req.exactly()?;
    store::check_keys([key])?;
    store::check_value(expected)?;
    store::check_value(new)?;
    let swapped = store::cas(svc, key, Some(expected.clone()), new).await?;
    Ok(Frame::Integer(i64::from(swapped)))
}
