//! The stable key → slot hash.
//!
//! Every node, client and release must agree on a key's slot forever, so the hash is written
//! out here rather than taken from `std` (whose `DefaultHasher` may change between versions).
//! CRC-16/XMODEM is the function Redis Cluster uses for the same job: cheap, and it spreads
//! short keys evenly over the low bits.

use super::{Slot, SLOTS};

/// The CRC-16/XMODEM polynomial (x^16 + x^12 + x^5 + 1).
const POLY: u16 = 0x1021;

/// The CRC-16/XMODEM checksum of `bytes` (initial value 0, no reflection, no final xor).
pub fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ POLY
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot a key lives in: its CRC-16/XMODEM modulo [`SLOTS`].
pub fn slot_of(key: &[u8]) -> Slot {
    // SLOTS is a power of two below 2^16, so the remainder always fits a u16.
    Slot((usize::from(crc16_xmodem(key)) % SLOTS) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_published_check_value() {
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(crc16_xmodem(b""), 0);
    }

    #[test]
    fn slots_are_stable_values() {
        // Pinned: changing these would silently re-home every stored key.
        assert_eq!(slot_of(b"123456789"), Slot(0x31C3 % 1024));
        assert_eq!(
            slot_of(b"foo"),
            Slot((crc16_xmodem(b"foo") as usize % 1024) as u16)
        );
        assert_eq!(crc16_xmodem(b"foo"), 0xAF96);
    }

    #[test]
    fn keys_spread_evenly_over_slots() {
        let mut counts = vec![0u32; SLOTS];
        let keys = 200 * SLOTS;
        for i in 0..keys {
            counts[slot_of(format!("key{i}").as_bytes()).index()] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 100 && *max < 300, "min {min} max {max}");
    }
}
