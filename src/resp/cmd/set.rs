//! `SET key value [NX|XX]`: `+OK`, or nil (`$-1`) when the condition does not hold.
//!
//! Plain `SET` is one `Put`. `NX` ("only if absent") is one `Cas { expected: None }`.
//! `XX` ("only if present") has no single operation, so it reads the key and then swaps on the
//! value it read: if the swap succeeds, the key existed at that instant, which is where the
//! `SET XX` takes effect (linearizable); if the read finds nothing, the key was absent at the
//! read, where the `SET XX` returns nil having done nothing. A failed swap means the key
//! changed in between and did nothing, so it retries, at most [`XX_ATTEMPTS`] times, then
//! answers an error (nothing written).
//! Expiry options (`EX`, `PX`, `KEEPTTL`, ...) and `GET` are not supported: the store has no
//! expiry, and silently ignoring them would keep keys forever that the client meant to expire.

use bytes::Bytes;

use super::{store, CmdError};
use crate::resp::frame::Frame;
use crate::resp::request::Request;
use crate::service::KvService;

/// How often `SET ... XX` retries a lost compare-and-swap before giving up.
const XX_ATTEMPTS: usize = 16;

/// When to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Condition {
    Always,
    IfAbsent,
    IfPresent,
}

pub(crate) async fn run(req: &Request, svc: &dyn KvService) -> Result<Frame, CmdError> {
    let args = req.arity(2, None)?;
    let (key, value) = (&args[0], &args[1]);
    let condition = condition(&args[2..])?;
    store::check_keys([key])?;
    store::check_value(value)?;
    let written = match condition {
        Condition::Always => store::put(svc, key, value).await.map(|()| true)?,
        Condition::IfAbsent => store::cas(svc, key, None, value).await?,
        Condition::IfPresent => set_if_present(svc, key, value).await?,
    };
    Ok(if written {
        Frame::simple("OK")
    } else {
        Frame::Null
    })
}

fn condition(options: &[Bytes]) -> Result<Condition, CmdError> {
    let mut condition = Condition::Always;
    for option in options {
        let wanted = match option.to_ascii_uppercase().as_slice() {
            b"NX" => Condition::IfAbsent,
            b"XX" => Condition::IfPresent,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" | b"KEEPTTL" => {
                return Err(CmdError::Unsupported("expiry (SET EX/PX/...)".into()))
            }
            b"GET" => return Err(CmdError::Unsupported("SET ... GET".into())),
            _ => return Err(CmdError::Syntax),
        };
        if condition != Condition::Always && condition != wanted {
            return Err(CmdError::Syntax);
        }
        condition = wanted;
    }
    Ok(condition)
}

async fn set_if_present(svc: &dyn KvService, key: &Bytes, value: &Bytes) -> Result<bool, CmdError> {
    for _ in 0..XX_ATTEMPTS {
        let Some(current) = store::get(svc, key).await? else {
            return Ok(false);
        };
        if store::cas(svc, key, Some(current), value).await? {
            return Ok(true);
        }
    }
    Err(CmdError::Contended)
}
