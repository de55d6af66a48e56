//! `MSET key value [key value ...]`: writes each pair with one `Put`, in order, then `+OK`.
//!
//! Unlike Redis it is not atomic across keys (keys live in different replication groups): if
//! a write fails midway, the error is returned and the earlier pairs stay written. Sizes are
//! all checked first, so an oversized argument writes nothing.

use super::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let args = req.arity(2, None)?;
    if args.len() % 2 != 0 {
        return Err(CmdError::Arity(req.lower_name()));
    }
    let pairs: Vec<_> = args.chunks_exact(2).map(|p| (&p[0], &p[1])).collect();
    store::check_keys(pairs.iter().map(|(k, _)| *k))?;
    pairs.iter().try_for_each(|(_, v)| store::check_value(v))?;
    for (key, value) in pairs {
        store::put(svc, key, value).await?;
    }
    Ok(Frame::simple("OK"))
}
