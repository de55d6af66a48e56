//! `SET key word [word ...]`: stores the words joined by single spaces (the seed's clients send
//! `SET k "Cloud Computing"` as separate words) and answers `+OK`.

use bytes::Bytes;

use crate::resp::cmd::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let args = req.arity(2, None)?;
    let key = &args[0];
    let value = Bytes::from(args[1..].join(&b' '));
    store::check_keys([key])?;
    store::check_value(&value)?;
    store::put(svc, key, &value).await?;
    Ok(Frame::simple("OK"))
}
