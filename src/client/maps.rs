//! Learning the slot map: asking seeds and known nodes, and sharing what was learned.
//!
//! A map is asked for rarely (on a session's first command, when routing fails, and every few
//! seconds while errors continue), so each question goes over a short-lived connection of its
//! own and all sources are asked at once: one blackholed seed then costs one timeout, not one
//! per source.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;
use kv_ports::membership::{Epoch, SlotMap};

use super::connection::{CallError, Connection};

/// How many nodes of a known map are asked besides the seeds: enough that some answer when
/// the seeds are down, few enough that a large cluster is not flooded by every client.
const KNOWN_SOURCES: usize = 8;

/// Whether a map from the network can be routed by: formed, and structurally valid, so every
/// group has members and every member an address (routing relies on both).
pub(crate) fn usable(map: &SlotMap) -> bool {
    map.is_formed() && map.validate().is_ok()
}

/// Where to ask for a map: the seeds first (the coordinator publishes the authoritative one),
/// then up to [`KNOWN_SOURCES`] nodes of the map held, without duplicates.
pub(crate) fn sources(seeds: &[SocketAddr], held: Option<&SlotMap>) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(seeds.len() + KNOWN_SOURCES);
    for &addr in seeds {
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    let known = held.map_or(&[][..], |m| m.nodes.as_slice());
    for addr in known
        .iter()
        .map(|n| n.client)
        .filter(|a| !seeds.contains(a))
    {
        if out.len() >= seeds.len() + KNOWN_SOURCES {
            break;
        }
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

/// What one round of map questions learned.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// The newest usable map newer than the epoch asked about, if any source had one.
    pub map: Option<SlotMap>,
    /// How many sources answered at all (`Map(None)` included).
    pub answered: usize,
    /// Why the others did not, for error messages.
    pub errors: Vec<String>,
}

/// Asks every source at once for a map newer than `have`, each within `timeout` (connecting
/// included), and keeps the newest usable answer.
pub(crate) async fn fetch_newest(
    sources: &[SocketAddr],
    have: Epoch,
    timeout: Duration,
) -> Fetched {
    let asks = sources.iter().map(|&addr| async move {
        let ask = async {
            let mut conn = Connection::open(addr, timeout).await?;
            conn.fetch_map(have).await
        };
        let answer = tokio::time::timeout(timeout, ask)
            .await
            .unwrap_or(Err(CallError::Unexpected("no answer in time")));
        (addr, answer)
    });
    let mut fetched = Fetched::default();
    for (addr, answer) in join_all(asks).await {
        match answer {
            Ok(map) => {
                fetched.answered += 1;
                let newer = map.filter(|m| m.epoch > have && usable(m));
                if let Some(m) = newer {
                    if fetched.map.as_ref().is_none_or(|best| m.epoch > best.epoch) {
                        fetched.map = Some(m);
                    }
                }
            }
            Err(e) => fetched.errors.push(format!("{addr}: {e}")),
        }
    }
    fetched
}

/// The newest map any part of a [`Client`](super::Client) learned, so the session and the
/// status queries share one view. The epoch is kept apart in an atomic so that the per-command
/// check ("is there something newer?") takes no lock.
#[derive(Debug, Default)]
pub(crate) struct MapCell {
    epoch: AtomicU64,
    map: Mutex<Option<SlotMap>>,
}

impl MapCell {
    /// The epoch of the map held (0: none).
    pub(crate) fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    /// A copy of the map held.
    pub(crate) fn get(&self) -> Option<SlotMap> {
        self.lock().clone()
    }

    /// Keeps `map` if it is newer than the one held.
    pub(crate) fn offer(&self, map: &SlotMap) {
        let mut held = self.lock();
        if held.as_ref().is_none_or(|h| map.epoch > h.epoch) {
            *held = Some(map.clone());
            self.epoch.store(map.epoch.0, Ordering::Release);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SlotMap>> {
        // Every update is a single assignment, so a poisoned lock still holds a whole map.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}
