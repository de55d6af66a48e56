//! Bounds on what one client may make the server buffer.

use kv_ports::kv::MAX_VALUE_BYTES;

/// Size limits the codec enforces before it allocates or waits for more bytes. A request that
/// breaks one is a protocol error: the connection gets `-ERR Protocol error: ...` and closes,
/// because the server can no longer tell where the next request starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame (one request, all its elements) in bytes.
    pub max_frame_bytes: usize,
    /// The largest declared bulk-string length. Set a little above the store's value limit so
    /// that a slightly oversized value reaches the command layer and gets a polite `-ERR`
    /// without losing the connection.
    pub max_bulk_bytes: usize,
    /// The most elements one array may declare.
    pub max_array_len: usize,
    /// The longest header line (`*n`, `$n`, `:n`, `+text`) or inline command, CRLF excluded.
    pub max_line_bytes: usize,
    /// How deeply arrays may nest (requests need 1; replies in tests a few more).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 8 * 1024 * 1024,
            max_bulk_bytes: MAX_VALUE_BYTES + 64 * 1024,
            max_array_len: 1024 * 1024,
            max_line_bytes: 64 * 1024,
            max_depth: 8,
        }
    }
}
