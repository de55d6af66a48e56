//! Typed calls on the [`KvService`] and the size checks that precede them.
//!
//! Commands validate every key and value before the first call, so an oversized argument
//! fails the whole command with nothing changed.

use bytes::Bytes;
use kv_ports::kv::{KvOp, KvResult, MAX_KEY_BYTES, MAX_VALUE_BYTES};

use super::CmdError;
use crate::service::KvService;

/// Fails unless every key fits [`MAX_KEY_BYTES`].
pub(crate) fn check_keys<'a>(keys: impl IntoIterator<Item = &'a Bytes>) -> Result<(), CmdError> {
    match keys.into_iter().find(|k| k.len() > MAX_KEY_BYTES) {
        Some(k) => Err(CmdError::KeyTooLarge(k.len())),
        None => Ok(()),
    }
}

/// Fails unless `value` fits [`MAX_VALUE_BYTES`].
pub(crate) fn check_value(value: &Bytes) -> Result<(), CmdError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(CmdError::ValueTooLarge(value.len()));
    }
    Ok(())
}

/// Reads `key`.
pub(crate) async fn get(svc: &dyn KvService, key: &Bytes) -> Result<Option<Bytes>, CmdError> {
    match svc.execute(KvOp::Get { key: key.clone() }).await? {
        KvResult::Value(v) => Ok(v),
        other => Err(CmdError::Internal(format!("{other:?} for a get"))),
    }
}

/// Writes `key` unconditionally.
pub(crate) async fn put(svc: &dyn KvService, key: &Bytes, value: &Bytes) -> Result<(), CmdError> {
    let op = KvOp::Put {
        key: key.clone(),
        value: value.clone(),
    };
    match svc.execute(op).await? {
        KvResult::Written => Ok(()),
        other => Err(CmdError::Internal(format!("{other:?} for a put"))),
    }
}

/// Writes `key` only if it holds `expected` (`None`: only if absent); says whether it did.
pub(crate) async fn cas(
    svc: &dyn KvService,
    key: &Bytes,
    expected: Option<Bytes>,
    new: &Bytes,
) -> Result<bool, CmdError> {
    let op = KvOp::Cas {
        key: key.clone(),
        expected,
        new: new.clone(),
    };
    match svc.execute(op).await? {
        KvResult::Swapped(swapped) => Ok(swapped),
        other => Err(CmdError::Internal(format!("{other:?} for a cas"))),
    }
}

/// Removes `key`; says whether it existed.
pub(crate) async fn delete(svc: &dyn KvService, key: &Bytes) -> Result<bool, CmdError> {
    match svc.execute(KvOp::Delete { key: key.clone() }).await? {
        KvResult::Deleted(existed) => Ok(existed),
        other => Err(CmdError::Internal(format!("{other:?} for a delete"))),
    }
}

/// Removes each key in order and counts those that existed (`DEL` in both dialects).
pub(crate) async fn delete_all(svc: &dyn KvService, keys: &[Bytes]) -> Result<i64, CmdError> {
    check_keys(keys)?;
    let mut removed = 0;
    for key in keys {
        removed += i64::from(delete(svc, key).await?);
    }
    Ok(removed)
}
