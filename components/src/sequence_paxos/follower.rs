//! Follower-side handlers: promise, synchronise, accept, decide, compact, ask for resync.

use kv_ports::ids::NodeId;

use super::core::{Phase, Role, SequencePaxos};
use super::messages::{Entry, PaxosMsg};
use crate::ble::Ballot;

impl<T: Clone> SequencePaxos<T> {
    /// Promise `n` if it is higher than anything promised (or re-promise it when resyncing),
    /// and offer the leader the part of our log it may be missing.
    pub(super) fn on_prepare(
        &mut self,
        from: NodeId,
        n: Ballot,
        l_ld: u64,
        l_acc: Ballot,
        l_len: u64,
    ) {
        let fresh = n > self.n_prom;
        // Re-promising the ballot we follow is how a follower is resynchronised (after a
        // PrepareReq, a lost AcceptSync or a stale duplicate): safe, because a later AcceptSync
        // in the same ballot only ever extends what we accepted in it.
        let resync = n == self.n_prom && self.role == Role::Follower;
        let allowed = fresh || resync || (self.cfg.unsafe_skip_promise_check && n != self.n_prom);
        if !allowed {
            if n < self.n_prom {
                self.outgoing.push((
                    from,
                    PaxosMsg::Nack {
                        n,
                        promised: self.n_prom,
                    },
                ));
            }
            return;
        }
        self.step_down();
        self.set_promise(n);
        self.role = Role::Follower;
        self.phase = Phase::Prepare;
        self.leader = Some(from);
        let len = self.log.len();
        let sfx_start = if self.acc_rnd > l_acc {
            l_ld
        } else if self.acc_rnd == l_acc {
            l_len
        } else {
            len
        };
        let sfx_start = sfx_start.clamp(self.log.trimmed(), len);
        let msg = PaxosMsg::Promise {
            n,
            acc_rnd: self.acc_rnd,
            log_len: len,
            ld: self.ld,
            sfx_start,
            suffix: self.log.suffix(sfx_start),
        };
        self.outgoing.push((from, msg));
    }

    fn is_follower_of(&self, n: Ballot, phase: Phase) -> bool {
        self.role == Role::Follower && n == self.n_prom && self.phase == phase
    }

    /// Adopt the leader's log from `sync_idx` on. The first sync in a ballot replaces our
    /// suffix; a later one (after a resync) only extends, because within one ballot the leader's
    /// log only grows and we must never forget what we accepted in it.
    pub(super) fn on_accept_sync(
        &mut self,
        from: NodeId,
        n: Ballot,
        sync_idx: u64,
        suffix: Vec<Entry<T>>,
        l_ld: u64,
    ) {
        if !self.is_follower_of(n, Phase::Prepare) {
            return;
        }
        let len = self.log.len();
        if self.acc_rnd == n {
            if sync_idx > len {
                return;
            }
            let skip = (len - sync_idx) as usize;
            self.append(suffix.into_iter().skip(skip).collect());
        } else {
            assert!(
                sync_idx <= len,
                "sync point beyond a log that did not change since the promise"
            );
            let cut = sync_idx.max(self.ld);
            let skip = (cut - sync_idx) as usize;
            self.log.truncate(cut);
            self.append(suffix.into_iter().skip(skip).collect());
        }
        self.acc_rnd = n;
        self.phase = Phase::Accept;
        self.leader = Some(from);
        self.decide_up_to(l_ld);
        self.send_accepted(from, n);
    }

    /// Accept a batch. Overlaps (duplicates) are skipped; a gap (a lost batch) is left for
    /// the leader's resend, since accepting past a hole would break the prefix property.
    pub(super) fn on_accept_decide(
        &mut self,
        from: NodeId,
        n: Ballot,
        start: u64,
        entries: Vec<Entry<T>>,
        l_ld: u64,
    ) {
        if !self.is_follower_of(n, Phase::Accept) {
            return;
        }
        let len = self.log.len();
        if start > len {
            return;
        }
        let skip = (len - start) as usize;
        if skip < entries.len() {
            self.append(entries.into_iter().skip(skip).collect());
        }
        self.decide_up_to(l_ld);
        self.send_accepted(from, n);
    }

    fn send_accepted(&mut self, to: NodeId, n: Ballot) {
        let msg = PaxosMsg::Accepted {
            n,
            log_len: self.log.len(),
            ld: self.ld,
        };
        self.outgoing.push((to, msg));
    }

    pub(super) fn on_decide(&mut self, from: NodeId, n: Ballot, l_ld: u64) {
        if !self.is_follower_of(n, Phase::Accept) || self.acc_rnd != n {
            return;
        }
        let before = self.ld;
        self.decide_up_to(l_ld);
        if self.ld > before {
            self.send_accepted(from, n);
        }
    }

    pub(super) fn on_trim(&mut self, n: Ballot, idx: u64) {
        if n == self.n_prom && self.role == Role::Follower {
            self.trim_allowed = self.trim_allowed.max(idx);
            self.compact();
        }
    }

    /// On a resend tick: a follower still waiting for its sync asks the leader again.
    pub(super) fn follower_resend(&mut self) {
        if self.phase != Phase::Prepare {
            return;
        }
        if let Some(l) = self.leader.filter(|l| *l != self.cfg.pid) {
            self.outgoing
                .push((l, PaxosMsg::PrepareReq { n: self.n_prom }));
        }
    }
}
