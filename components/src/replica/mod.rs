//! replica (core being written).
