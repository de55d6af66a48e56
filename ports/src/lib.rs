//! The kv component framework.
#![deny(missing_docs)]
