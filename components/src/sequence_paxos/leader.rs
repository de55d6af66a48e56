//! Leader-side handlers: prepare, log adoption, synchronisation, batching, deciding, resends.

use std::collections::{BTreeMap, BTreeSet};

use kv_ports::ids::NodeId;

use super::core::{BestLog, LeaderState, Phase, PromiseMeta, Role, SequencePaxos};
use super::messages::{Entry, PaxosMsg};
use crate::ble::Ballot;

impl<T: Clone> SequencePaxos<T> {
    /// Start leading in ballot `b`: promise it ourselves and ask every peer to promise.
    pub(super) fn become_leader(&mut self, b: Ballot) {
        self.set_promise(b);
        self.role = Role::Leader;
        self.phase = Phase::Prepare;
        self.lead = Some(LeaderState {
            n: b,
            promises: BTreeMap::new(),
            best: BestLog {
                acc_rnd: self.acc_rnd,
                end: self.log.len(),
                suffix: None,
            },
            max_prom_acc: self.acc_rnd,
            adopted_len: self.log.len(),
            synced: BTreeSet::new(),
            las: BTreeMap::new(),
            lds: BTreeMap::new(),
            last_check: BTreeMap::new(),
            unsent_from: self.log.len(),
            decided_sent: self.ld,
            trim_sent: self.log.trimmed(),
        });
        for p in self.peers.clone() {
            self.send_prepare(p);
        }
        self.maybe_finish_prepare();
    }

    /// Give up leadership (a higher ballot is around); pending proposals go to the new leader.
    pub(super) fn step_down(&mut self) {
        if self.role == Role::Leader {
            self.role = Role::Follower;
            self.phase = Phase::Prepare;
            self.lead = None;
            self.forward.append(&mut self.pending);
        }
    }

    pub(super) fn send_prepare(&mut self, to: NodeId) {
        let Some(lead) = &self.lead else { return };
        let msg = PaxosMsg::Prepare {
            n: lead.n,
            ld: self.ld,
            acc_rnd: self.acc_rnd,
            log_len: self.log.len(),
        };
        self.outgoing.push((to, msg));
    }

    fn current_lead(&self, n: Ballot) -> bool {
        self.role == Role::Leader && self.lead.as_ref().is_some_and(|l| l.n == n)
    }

    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        n: Ballot,
        meta: PromiseMeta,
        sfx_start: u64,
        suffix: Vec<Entry<T>>,
    ) {
        if !self.current_lead(n) || from == self.cfg.pid {
            return;
        }
        let phase = self.phase;
        let lead = self.lead.as_mut().expect("leader state");
        lead.promises.insert(from, meta);
        if phase == Phase::Accept {
            self.send_accept_sync(from);
            return;
        }
        let end = sfx_start + suffix.len() as u64;
        let usable = sfx_start <= self.log.len() && sfx_start >= self.ld;
        if usable && (meta.acc_rnd, end) > (lead.best.acc_rnd, lead.best.end) {
            lead.best = BestLog {
                acc_rnd: meta.acc_rnd,
                end,
                suffix: Some((sfx_start, suffix)),
            };
        }
        self.maybe_finish_prepare();
    }

    fn maybe_finish_prepare(&mut self) {
        let Some(lead) = &self.lead else { return };
        if self.phase != Phase::Prepare || lead.promises.len() + 1 < self.majority {
            return;
        }
        let lead = self.lead.as_mut().expect("leader state");
        let best_acc = lead.best.acc_rnd;
        if let Some((start, sfx)) = lead.best.suffix.take() {
            assert!(
                start >= self.ld,
                "adoption would cut into the decided prefix"
            );
            self.log.truncate(start);
            self.log.extend(sfx);
        }
        let lead = self.lead.as_mut().expect("leader state");
        lead.max_prom_acc = best_acc;
        lead.adopted_len = self.log.len();
        lead.unsent_from = self.log.len();
        self.acc_rnd = lead.n;
        self.phase = Phase::Accept;
        let pending = std::mem::take(&mut self.pending);
        if self.stopsign_pending().is_none() {
            let until = pending
                .iter()
                .position(Entry::is_stopsign)
                .map_or(pending.len(), |i| i + 1);
            self.append_as_leader(pending.into_iter().take(until).collect());
        }
        let followers: Vec<NodeId> = self
            .lead
            .as_ref()
            .expect("leader")
            .promises
            .keys()
            .copied()
            .collect();
        for f in followers {
            self.send_accept_sync(f);
        }
        self.lead.as_mut().expect("leader").unsent_from = self.log.len();
        self.update_decided();
    }

    /// Bring follower `f` in line with our log, starting where its log surely agrees with ours.
    fn send_accept_sync(&mut self, f: NodeId) {
        let lead = self.lead.as_mut().expect("leader state");
        let meta = lead.promises[&f];
        let sync_idx = if meta.acc_rnd == lead.n {
            meta.log_len
        } else if meta.acc_rnd == lead.max_prom_acc {
            meta.log_len.min(lead.adopted_len)
        } else {
            meta.ld
        };
        let sync_idx = sync_idx.min(self.log.len());
        if sync_idx < self.log.trimmed() {
            // The follower needs entries we compacted: only a snapshot transfer can help it.
            return;
        }
        lead.synced.insert(f);
        let msg = PaxosMsg::AcceptSync {
            n: lead.n,
            sync_idx,
            suffix: self.log.suffix(sync_idx),
            ld: self.ld,
        };
        self.outgoing.push((f, msg));
    }

    /// Append as the accepting leader; the batch goes out at the next drain.
    pub(super) fn append_as_leader(&mut self, entries: Vec<Entry<T>>) {
        self.append(entries);
        self.update_decided();
    }

    pub(super) fn on_accepted(&mut self, from: NodeId, n: Ballot, log_len: u64, ld: u64) {
        if !self.current_lead(n) || self.phase != Phase::Accept {
            return;
        }
        let len = self.log.len();
        let lead = self.lead.as_mut().expect("leader state");
        let las = lead.las.entry(from).or_insert(0);
        *las = (*las).max(log_len.min(len));
        let lds = lead.lds.entry(from).or_insert(0);
        *lds = (*lds).max(ld);
        self.update_decided();
    }

    /// Decide the longest prefix a majority accepted in our ballot.
    fn update_decided(&mut self) {
        let Some(lead) = &self.lead else { return };
        if self.phase != Phase::Accept {
            return;
        }
        let mut acks: Vec<u64> = lead.las.values().copied().collect();
        acks.push(self.log.len());
        acks.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(&idx) = acks.get(self.majority - 1) {
            self.decide_up_to(idx);
        }
    }

    pub(super) fn on_prepare_req(&mut self, from: NodeId, n: Ballot) {
        if self.role != Role::Leader || n > self.n_prom {
            return;
        }
        if let Some(lead) = self.lead.as_mut() {
            lead.synced.remove(&from);
        }
        self.send_prepare(from);
    }

    pub(super) fn on_nack(&mut self, n: Ballot, promised: Ballot) {
        if self.current_lead(n) && promised > n {
            self.hint(promised);
        }
    }

    pub(super) fn on_proposal(&mut self, entries: Vec<Entry<T>>) {
        for e in entries {
            if self.role != Role::Leader || self.stopsign_pending().is_some() {
                return;
            }
            match self.phase {
                Phase::Accept => self.append_as_leader(vec![e]),
                Phase::Prepare => self.pending.push(e),
            }
        }
    }

    /// Send the batch gathered since the last drain, the decided index, and the trim point.
    pub(super) fn flush(&mut self) {
        if !self.forward.is_empty() {
            if let Some(l) = self.leader.filter(|l| *l != self.cfg.pid) {
                let entries = std::mem::take(&mut self.forward);
                self.outgoing.push((l, PaxosMsg::Proposal { entries }));
            }
        }
        if !self.is_accepting_leader() {
            return;
        }
        let len = self.log.len();
        let ld = self.ld;
        let lead = self.lead.as_mut().expect("leader state");
        let n = lead.n;
        if len > lead.unsent_from {
            let entries = self.log.suffix(lead.unsent_from);
            for &f in &lead.synced {
                let msg = PaxosMsg::AcceptDecide {
                    n,
                    start: lead.unsent_from,
                    entries: entries.clone(),
                    ld,
                };
                self.outgoing.push((f, msg));
            }
            lead.unsent_from = len;
            lead.decided_sent = ld;
        } else if ld > lead.decided_sent {
            for &f in &lead.synced {
                self.outgoing.push((f, PaxosMsg::Decide { n, ld }));
            }
            lead.decided_sent = ld;
        }
        self.flush_trim();
    }

    /// Everyone decided below the minimum of the members' decided indices: compact it away.
    fn flush_trim(&mut self) {
        let lead = self.lead.as_mut().expect("leader state");
        let min = self
            .peers
            .iter()
            .map(|p| lead.lds.get(p).copied().unwrap_or(0))
            .fold(self.ld, u64::min);
        if min > lead.trim_sent {
            lead.trim_sent = min;
            let n = lead.n;
            for &f in &lead.synced {
                self.outgoing.push((f, PaxosMsg::Trim { n, idx: min }));
            }
            self.trim_allowed = self.trim_allowed.max(min);
            self.compact();
        }
    }

    /// On a resend tick: re-prepare silent peers, resend to followers that made no progress.
    pub(super) fn leader_resend(&mut self) {
        let Some(lead) = &self.lead else { return };
        let (n, phase) = (lead.n, self.phase);
        for p in self.peers.clone() {
            let lead = self.lead.as_mut().expect("leader state");
            if phase == Phase::Prepare || !lead.synced.contains(&p) {
                if !lead.promises.contains_key(&p) || phase == Phase::Accept {
                    self.send_prepare(p);
                }
                continue;
            }
            let now = (
                lead.las.get(&p).copied().unwrap_or(0),
                lead.lds.get(&p).copied().unwrap_or(0),
            );
            let stuck = lead.last_check.insert(p, now) == Some(now);
            if !stuck || (now.0 >= self.log.len() && now.1 >= self.ld) {
                continue;
            }
            let start = now.0.max(self.log.trimmed());
            let end = start.saturating_add(self.cfg.max_resend as u64);
            let entries = self.log.slice(start, end);
            let msg = PaxosMsg::AcceptDecide {
                n,
                start,
                entries,
                ld: self.ld,
            };
            self.outgoing.push((p, msg));
        }
    }
}
