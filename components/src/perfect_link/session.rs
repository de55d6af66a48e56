//! Per-peer sequencing, pure: numbering, the unacked buffer, cumulative acks, dedup.
//!
//! One [`Session`] holds both directions of the link with one peer. Outgoing payloads get
//! consecutive sequence numbers from 1 and stay buffered until the peer acknowledges them
//! cumulatively; after a reconnect the peer's `Hello` says where to resume and the rest is
//! resent. Incoming frames are delivered only when they carry exactly the next expected
//! number, so resent duplicates are dropped. No sockets or clocks here, so it is tested by hand.

use std::collections::VecDeque;

use bytes::Bytes;
use kv_ports::network::Topic;

use super::frame::Frame;

/// A payload waiting for its acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Its sequence number.
    pub seq: u64,
    /// Its topic.
    pub topic: Topic,
    /// The payload (cheap to clone for a resend).
    pub payload: Bytes,
}

impl Outgoing {
    /// The frame that carries it.
    pub fn frame(&self) -> Frame {
        Frame::Data {
            seq: self.seq,
            topic: self.topic,
            payload: self.payload.clone(),
        }
    }
}

/// A protocol violation by the peer; the shell closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer acknowledged frames we never sent.
    #[error("ack up to {acked} but only {sent} frames were sent")]
    AckBeyondSent {
        /// The acknowledged `next_expected`.
        acked: u64,
        /// The next sequence number we would assign.
        sent: u64,
    },
    /// A frame skipped ahead, which FIFO resend from `next_expected` never does.
    #[error("frame {got} arrived while {expected} was expected")]
    Gap {
        /// The sequence number received.
        got: u64,
        /// The one expected.
        expected: u64,
    },
}

/// What to do with an incoming data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// First time seen: deliver it.
    Deliver,
    /// Already delivered (a resend): drop it.
    Duplicate,
}

/// Both directions of the link with one peer.
#[derive(Debug)]
pub struct Session {
    next_seq: u64,
    unacked: VecDeque<Outgoing>,
    next_expected: u64,
    unacked_deliveries: u64,
}

impl Default for Session {
    fn default() -> Self {
        Session {
            next_seq: 1,
            unacked: VecDeque::new(),
            next_expected: 1,
            unacked_deliveries: 0,
        }
    }
}

impl Session {
    /// Forgets both directions (new peer incarnation, or a cut): numbering restarts at 1.
    pub fn reset(&mut self) {
        *self = Session::default();
    }

    /// Numbers and buffers a payload; returns the frame to transmit now if connected.
    pub fn push(&mut self, topic: Topic, payload: Bytes) -> Frame {
        let out = Outgoing {
            seq: self.next_seq,
            topic,
            payload,
        };
        self.next_seq += 1;
        let frame = out.frame();
        self.unacked.push_back(out);
        frame
    }

    /// Applies a cumulative ack: drops every buffered frame numbered below `next_expected`.
    pub fn ack(&mut self, next_expected: u64) -> Result<(), SessionError> {
        if next_expected > self.next_seq {
            return Err(SessionError::AckBeyondSent {
                acked: next_expected,
                sent: self.next_seq,
            });
        }
        while self.unacked.front().is_some_and(|o| o.seq < next_expected) {
            self.unacked.pop_front();
        }
        Ok(())
    }

    /// After a handshake: acks what the peer already has, returns what must be resent, in order.
    pub fn resume_from(&mut self, next_expected: u64) -> Result<Vec<Frame>, SessionError> {
        self.ack(next_expected)?;
        Ok(self.unacked.iter().map(Outgoing::frame).collect())
    }

    /// Classifies an incoming data frame, advancing the receive window when it is delivered.
    pub fn receive(&mut self, seq: u64) -> Result<Receipt, SessionError> {
        if seq < self.next_expected {
            return Ok(Receipt::Duplicate);
        }
        if seq > self.next_expected {
            return Err(SessionError::Gap {
                got: seq,
                expected: self.next_expected,
            });
        }
        self.next_expected += 1;
        self.unacked_deliveries += 1;
        Ok(Receipt::Deliver)
    }

    /// How many deliveries have not been acknowledged to the peer yet.
    pub fn pending_acks(&self) -> u64 {
        self.unacked_deliveries
    }

    /// The cumulative ack to send, if anything was delivered since the last one.
    pub fn take_ack(&mut self) -> Option<Frame> {
        if self.unacked_deliveries == 0 {
            return None;
        }
        self.unacked_deliveries = 0;
        Some(Frame::Ack {
            next_expected: self.next_expected,
        })
    }

    /// The next sequence number expected from the peer (sent in our `Hello`).
    pub fn next_expected(&self) -> u64 {
        self.next_expected
    }

    /// The number of sent frames still waiting for an ack.
    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Topic = Topic::Test(1);

    fn seqs(frames: &[Frame]) -> Vec<u64> {
        frames
            .iter()
            .map(|f| match f {
                Frame::Data { seq, .. } => *seq,
                other => panic!("not data: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn numbers_from_one_and_buffers_until_acked() {
        let mut s = Session::default();
        for i in 1..=5u64 {
            let f = s.push(T, Bytes::from(i.to_be_bytes().to_vec()));
            assert_eq!(seqs(&[f]), vec![i]);
        }
        assert_eq!(s.unacked_len(), 5);
        s.ack(3).unwrap();
        assert_eq!(s.unacked_len(), 3);
        s.ack(2).unwrap(); // stale ack: harmless
        assert_eq!(s.unacked_len(), 3);
        s.ack(6).unwrap();
        assert_eq!(s.unacked_len(), 0);
    }

    #[test]
    fn ack_beyond_sent_is_an_error() {
        let mut s = Session::default();
        s.push(T, Bytes::new());
        assert_eq!(
            s.ack(3),
            Err(SessionError::AckBeyondSent { acked: 3, sent: 2 })
        );
    }

    #[test]
    fn resume_resends_exactly_the_missing_suffix() {
        let mut s = Session::default();
        for _ in 0..6 {
            s.push(T, Bytes::new());
        }
        s.ack(2).unwrap();
        assert_eq!(seqs(&s.resume_from(4).unwrap()), vec![4, 5, 6]);
        assert_eq!(seqs(&s.resume_from(1).unwrap()), vec![4, 5, 6]);
        assert!(s.resume_from(7).unwrap().is_empty());
    }

    #[test]
    fn receive_delivers_once_in_order() {
        let mut s = Session::default();
        assert_eq!(s.receive(1), Ok(Receipt::Deliver));
        assert_eq!(s.receive(2), Ok(Receipt::Deliver));
        assert_eq!(s.receive(1), Ok(Receipt::Duplicate));
        assert_eq!(s.receive(2), Ok(Receipt::Duplicate));
        assert_eq!(s.receive(3), Ok(Receipt::Deliver));
        assert_eq!(
            s.receive(5),
            Err(SessionError::Gap {
                got: 5,
                expected: 4
            })
        );
        assert_eq!(s.next_expected(), 4);
    }

    #[test]
    fn acks_are_cumulative_and_only_when_needed() {
        let mut s = Session::default();
        assert_eq!(s.take_ack(), None);
        s.receive(1).unwrap();
        s.receive(2).unwrap();
        assert_eq!(s.pending_acks(), 2);
        assert_eq!(s.take_ack(), Some(Frame::Ack { next_expected: 3 }));
        assert_eq!(s.take_ack(), None);
        s.receive(2).unwrap(); // duplicate: nothing new to ack
        assert_eq!(s.take_ack(), None);
    }

    #[test]
    fn reset_restarts_both_directions() {
        let mut s = Session::default();
        s.push(T, Bytes::new());
        s.receive(1).unwrap();
        s.reset();
        assert_eq!(s.unacked_len(), 0);
        assert_eq!(s.next_expected(), 1);
        assert_eq!(seqs(&[s.push(T, Bytes::new())]), vec![1]);
        assert_eq!(s.receive(1), Ok(Receipt::Deliver));
    }

    /// A sender and a receiver across connections that drop at arbitrary points, with
    /// resend-from-hello: every payload is delivered exactly once and in order.
    #[test]
    fn exactly_once_across_simulated_drops() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let (mut tx, mut rx) = (Session::default(), Session::default());
        let mut wire: VecDeque<Frame> = VecDeque::new();
        let mut delivered = Vec::new();
        for i in 0..2_000u64 {
            wire.push_back(tx.push(T, Bytes::from(i.to_be_bytes().to_vec())));
            if rng.gen_bool(0.3) {
                // Deliver some of the wire.
                let n = rng.gen_range(0..=wire.len());
                for f in wire.drain(..n) {
                    let Frame::Data { seq, payload, .. } = f else {
                        unreachable!()
                    };
                    if rx.receive(seq).unwrap() == Receipt::Deliver {
                        delivered.push(u64::from_be_bytes(payload[..].try_into().unwrap()));
                    }
                }
                if let Some(Frame::Ack { next_expected }) = rx.take_ack() {
                    if rng.gen_bool(0.5) {
                        tx.ack(next_expected).unwrap();
                    }
                }
            }
            if rng.gen_bool(0.05) {
                // Connection drop: in-flight frames lost, resend from the receiver's hello.
                wire.clear();
                wire.extend(tx.resume_from(rx.next_expected()).unwrap());
            }
        }
        wire.extend(tx.resume_from(rx.next_expected()).unwrap());
        for f in wire {
            let Frame::Data { seq, payload, .. } = f else {
                unreachable!()
            };
            if rx.receive(seq).unwrap() == Receipt::Deliver {
                delivered.push(u64::from_be_bytes(payload[..].try_into().unwrap()));
            }
        }
        assert_eq!(delivered, (0..2_000).collect::<Vec<_>>());
    }
}
