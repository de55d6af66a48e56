//! The kv components.
#![deny(missing_docs)]
