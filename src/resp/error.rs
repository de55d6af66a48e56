//! Protocol errors: input after which the stream cannot be trusted to resynchronise.

/// Why a byte stream is not RESP. Each one ends the connection after its `-ERR` reply, as in
/// Redis: once a length is wrong nothing says where the next request starts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A frame started with a byte that is no RESP2 type.
    #[error("Protocol error: unknown type byte '{}'", char::from(*.0).escape_default())]
    BadTypeByte(u8),
    /// An array length that is not a number, below -1, or above the limit.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// A bulk-string length that is not a number, below -1, or above the limit.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// An integer frame that is not a decimal `i64`.
    #[error("Protocol error: invalid integer")]
    InvalidInteger,
    /// A bulk string not followed by CRLF.
    #[error("Protocol error: expected CRLF after bulk string")]
    MissingCrlf,
    /// A header line longer than the limit.
    #[error("Protocol error: too big line")]
    LineTooLong,
    /// An inline command longer than the limit.
    #[error("Protocol error: too big inline request")]
    InlineTooLong,
    /// An inline command with an unclosed or misplaced quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A frame larger than the configured limit.
    #[error("Protocol error: request exceeds {0} bytes")]
    FrameTooLarge(usize),
    /// Arrays nested deeper than the limit.
    #[error("Protocol error: arrays nested too deeply")]
    TooDeep,
    /// A request that is not an array (of bulk strings).
    #[error("Protocol error: expected '*', got '{}'", char::from(*.0).escape_default())]
    ExpectedArray(u8),
    /// A request element that is not a bulk string.
    #[error("Protocol error: expected '$', got '{}'", char::from(*.0).escape_default())]
    ExpectedBulk(u8),
}

/// What the codec can fail with: bad bytes, or the socket under it.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer sent something that is not RESP.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Reading or writing the socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
