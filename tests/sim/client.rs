//! Simulated clients: one operation at a time, retried with the same request id, given up
//! (recorded as unknown) after too many attempts.

use bytes::Bytes;
use kv_ports::ids::{ClientId, NodeId};
use kv_ports::kv::{KvCommand, KvOp, KvResult, RequestId};
use rand::rngs::SmallRng;
use rand::Rng;
use uuid::Uuid;

use super::history::{OpKind, OpRecord};

/// Ticks to wait for an answer before trying again elsewhere.
pub const TIMEOUT: u64 = 40;
/// Timeouts before the client gives up on an operation.
pub const MAX_TIMEOUTS: u32 = 8;
/// Attempts of any kind (timeouts and `NotLeader` answers) before giving up.
pub const MAX_TRIES: u32 = 40;

pub struct Pending {
    pub cmd: KvCommand,
    pub rec: usize,
    pub timeouts: u32,
    /// The last attempt was answered with a redirect (`NotLeader`, `Sealed`), not met with
    /// silence: in reconfiguration schedules its retry is not counted as a timeout.
    pub redirected: bool,
    pub tries: u32,
    pub deadline: u64,
}

pub struct Client {
    pub idx: usize,
    pub id: ClientId,
    pub seq: u64,
    pub remaining: usize,
    pub cur: Option<Pending>,
    pub hint: Option<NodeId>,
    pub next_at: u64,
    /// Per group, the configuration whose members this client talks to (its "published
    /// map"): moved on by a `Sealed { next_config }` answer, or refreshed after a timeout.
    pub views: Vec<u32>,
    /// The slot map it routes by (slot-move schedules): an index into the published maps,
    /// refreshed on `Moved` and after a timeout.
    pub map: usize,
    /// Keys to read before any random operation (the final read-back), last first.
    pub forced: Vec<usize>,
    last_seen: Vec<Option<String>>,
}

pub fn client_id(idx: usize) -> ClientId {
    ClientId(Uuid::from_u128(idx as u128 + 1))
}

pub fn client_idx(id: ClientId) -> usize {
    (id.0.as_u128() - 1) as usize
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn string(b: &Bytes) -> String {
    String::from_utf8(b.to_vec()).expect("the simulator writes UTF-8 values")
}

impl Client {
    pub fn new(idx: usize, ops: usize, keys: usize, groups: usize) -> Self {
        Client {
            idx,
            id: client_id(idx),
            seq: 0,
            remaining: ops,
            cur: None,
            hint: None,
            next_at: 0,
            views: vec![0; groups],
            map: 0,
            forced: Vec::new(),
            last_seen: vec![None; keys],
        }
    }

    pub fn done(&self) -> bool {
        self.remaining == 0 && self.cur.is_none()
    }

    /// A fresh random operation and its history record (outcome still unknown).
    pub fn next_op(
        &mut self,
        rng: &mut SmallRng,
        keys: usize,
        last_written: &[Option<String>],
        call: u64,
    ) -> (KvCommand, OpRecord) {
        self.seq += 1;
        self.remaining -= 1;
        if let Some(k) = self.forced.pop() {
            return self.read(k, call);
        }
        let k = rng.gen_range(0..keys);
        let key = format!("k{k}");
        let value = format!("{}.{}", self.idx, self.seq);
        let (op, kind) = match rng.gen_range(0..100) {
            0..40 => (KvOp::Get { key: bytes(&key) }, OpKind::Get { output: None }),
            40..70 => (
                KvOp::Put {
                    key: bytes(&key),
                    value: bytes(&value),
                },
                OpKind::Put {
                    value: value.clone(),
                },
            ),
            70..85 => {
                let expected = match rng.gen_range(0..3) {
                    0 => self.last_seen[k].clone(),
                    1 => last_written[k].clone(),
                    _ => None,
                };
                let op = KvOp::Cas {
                    key: bytes(&key),
                    expected: expected.as_deref().map(bytes),
                    new: bytes(&value),
                };
                (
                    op,
                    OpKind::Cas {
                        expected,
                        value: value.clone(),
                        output: false,
                    },
                )
            }
            _ => (
                KvOp::Delete { key: bytes(&key) },
                OpKind::Delete { existed: false },
            ),
        };
        let cmd = KvCommand {
            id: RequestId {
                client: self.id,
                seq: self.seq,
            },
            op,
        };
        let rec = OpRecord {
            client: self.idx,
            key,
            kind,
            call,
            ret: 0,
            ok: None,
        };
        (cmd, rec)
    }

    /// A read of key `k` (no random draw).
    fn read(&self, k: usize, call: u64) -> (KvCommand, OpRecord) {
        let key = format!("k{k}");
        let cmd = KvCommand {
            id: RequestId {
                client: self.id,
                seq: self.seq,
            },
            op: KvOp::Get { key: bytes(&key) },
        };
        let rec = OpRecord {
            client: self.idx,
            key,
            kind: OpKind::Get { output: None },
            call,
            ret: 0,
            ok: None,
        };
        (cmd, rec)
    }

    /// The operation completed with `result`: fill in its record.
    pub fn complete(&mut self, rec: &mut OpRecord, result: &KvResult, ret: u64) {
        let k: usize = rec.key[1..].parse().expect("key kN");
        match (&mut rec.kind, result) {
            (OpKind::Get { output }, KvResult::Value(v)) => {
                *output = v.as_ref().map(string);
                self.last_seen[k] = output.clone();
            }
            (OpKind::Put { value }, KvResult::Written) => self.last_seen[k] = Some(value.clone()),
            (OpKind::Cas { value, output, .. }, KvResult::Swapped(s)) => {
                *output = *s;
                if *s {
                    self.last_seen[k] = Some(value.clone());
                }
            }
            (OpKind::Delete { existed }, KvResult::Deleted(e)) => {
                *existed = *e;
                self.last_seen[k] = None;
            }
            (kind, r) => panic!("result {r:?} does not answer {kind:?}"),
        }
        rec.ok = Some(true);
        rec.ret = ret;
        self.cur = None;
    }
}
