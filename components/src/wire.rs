//! Encoding of protocol messages into link payloads.
//!
//! Each protocol owns its message type; the link carries opaque bytes. Postcard keeps frames
//! small and encoding cheap. A payload that does not decode comes from a buggy or hostile
//! peer: the shell logs it and drops it, and the protocol never sees it.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encodes a protocol message for the link.
pub fn encode<T: Serialize>(msg: &T) -> Bytes {
    // Serialising our own in-memory message types cannot fail: they have no maps with
    // non-string keys or other shapes postcard rejects.
    Bytes::from(postcard::to_allocvec(msg).expect("protocol messages always encode"))
}

/// Decodes a payload, or `None` (logged) when it is not a `T`.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Option<T> {
    match postcard::from_bytes(payload) {
        Ok(msg) => Some(msg),
        Err(error) => {
            tracing::warn!(%error, kind = std::any::type_name::<T>(), "dropping undecodable payload");
            None
        }
    }
}
