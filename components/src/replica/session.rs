//! Client sessions: each client's latest applied sequence number and the reply it got.

use std::collections::HashMap;

use kv_ports::ids::ClientId;
use kv_ports::kv::{KvResult, RequestId, SessionEntry};
use serde::{Deserialize, Serialize};

/// What the state machine remembers of one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The latest applied sequence number.
    pub seq: u64,
    /// Its reply, returned again to a retry of the same command.
    pub reply: KvResult,
}

/// How a command relates to its client's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Newer than anything applied: apply it.
    New,
    /// The latest applied command: answer with its original reply.
    Latest(KvResult),
    /// Older than the latest: its reply is gone (the client moved on long ago).
    Older,
}

/// The session table, keyed by client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionTable {
    sessions: HashMap<ClientId, Session>,
}

impl SessionTable {
    /// Classify a command id against the table.
    pub fn seen(&self, id: &RequestId) -> Seen {
        match self.sessions.get(&id.client) {
            None => Seen::New,
            Some(s) if id.seq > s.seq => Seen::New,
            Some(s) if id.seq == s.seq => Seen::Latest(s.reply.clone()),
            Some(_) => Seen::Older,
        }
    }

    /// Remember that `id` was applied with `reply`.
    pub fn record(&mut self, id: RequestId, reply: KvResult) {
        let s = Session { seq: id.seq, reply };
        if let Some(old) = self.sessions.insert(id.client, s) {
            assert!(old.seq < id.seq, "a session's sequence number only grows");
        }
    }

    /// Every session (for snapshots), sorted by client for determinism.
    pub fn export(&self) -> Vec<(ClientId, Session)> {
        let mut v: Vec<_> = self.sessions.iter().map(|(c, s)| (*c, s.clone())).collect();
        v.sort_by_key(|(c, _)| *c);
        v
    }

    /// Every session as it travels with moving slots, sorted by client.
    pub fn entries(&self) -> Vec<SessionEntry> {
        let all = self.export().into_iter();
        all.map(|(client, s)| SessionEntry {
            client,
            seq: s.seq,
            reply: s.reply,
        })
        .collect()
    }

    /// Take in another group's sessions (arriving with moved slots): per client the higher
    /// sequence number wins; on a tie the existing entry stays (both describe the same
    /// command). Clients run one command at a time, so a higher number means the lower one
    /// was answered or abandoned: dropping its reply loses nothing a retry could ask for.
    pub fn merge(&mut self, entries: &[SessionEntry]) {
        for e in entries {
            let newer = self.sessions.get(&e.client).is_none_or(|s| e.seq > s.seq);
            if newer {
                let s = Session {
                    seq: e.seq,
                    reply: e.reply.clone(),
                };
                self.sessions.insert(e.client, s);
            }
        }
    }

    /// A table holding exactly `sessions`.
    pub fn import(sessions: Vec<(ClientId, Session)>) -> Self {
        SessionTable {
            sessions: sessions.into_iter().collect(),
        }
    }
}
