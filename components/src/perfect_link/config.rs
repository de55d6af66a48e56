//! Tuning knobs of the perfect link.

use std::net::SocketAddr;
use std::time::Duration;

/// How a [`PerfectLink`](super::PerfectLink) frames, acknowledges and reconnects.
///
/// The defaults suit a LAN cluster; tests shrink the backoff so reconnects are quick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// Largest encoded frame (without its 4-byte length prefix) accepted or sent. A longer
    /// inbound frame closes the connection; a longer outbound payload is refused at `Send`.
    pub max_frame_len: usize,
    /// First delay before redialling a peer after a failed dial or a dropped connection.
    pub backoff_min: Duration,
    /// Cap of the exponentially growing redial delay.
    pub backoff_max: Duration,
    /// How often pending cumulative acks are flushed when traffic is too thin to trigger
    /// [`LinkConfig::ack_every`].
    pub ack_interval: Duration,
    /// Send a cumulative ack as soon as this many frames were delivered since the last one,
    /// which bounds the peer's unacked buffer under heavy traffic.
    pub ack_every: u64,
    /// A socket whose `Hello` exchange has not completed after this long is closed, so idle
    /// or silent clients cannot pin sockets.
    pub handshake_timeout: Duration,
    /// The address peers should dial, sent in our `Hello`; `None` advertises the bound
    /// address, which is wrong when binding `0.0.0.0` on a multi-host cluster.
    pub advertise: Option<SocketAddr>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            max_frame_len: 16 * 1024 * 1024,
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            ack_interval: Duration::from_millis(20),
            ack_every: 512,
            handshake_timeout: Duration::from_secs(5),
            advertise: None,
        }
    }
}

impl LinkConfig {
    /// The redial delay that follows `current`: doubled, clamped to `[backoff_min, backoff_max]`.
    pub fn next_backoff(&self, current: Duration) -> Duration {
        (current * 2).clamp(self.backoff_min, self.backoff_max.max(self.backoff_min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = LinkConfig {
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(35),
            ..LinkConfig::default()
        };
        assert_eq!(c.next_backoff(Duration::ZERO), Duration::from_millis(10));
        assert_eq!(
            c.next_backoff(Duration::from_millis(10)),
            Duration::from_millis(20)
        );
        assert_eq!(
            c.next_backoff(Duration::from_millis(20)),
            Duration::from_millis(35)
        );
        assert_eq!(
            c.next_backoff(Duration::from_millis(35)),
            Duration::from_millis(35)
        );
    }
}
