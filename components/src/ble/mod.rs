//! ble (core being written).
