//! Recording every operation as one JSON line in the history format of INTERFACES.md.
//!
//! Clients hand finished lines to a writer thread over a channel, so no client ever blocks on
//! file I/O or holds a lock across an await; the thread buffers writes and reports the first
//! I/O error when the run ends.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use bytes::Bytes;
use kv_ports::kv::{KvOp, KvResult};
use serde::Serialize;
use serde_json::Value;

use super::config::Kind;
use super::stats::Completion;
use crate::service::ServiceError;

/// One history line. Field names and meanings are fixed by INTERFACES.md.
#[derive(Debug, Serialize)]
pub struct Record {
    /// The client index.
    pub client: usize,
    /// The key's name.
    pub key: String,
    /// `get`, `put`, `cas` or `delete`.
    pub op: &'static str,
    /// The value written (puts and CAS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The CAS expectation; `null` means "absent".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    /// What the operation returned, when it completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Nanoseconds since the bench started, when the client issued the operation.
    pub call: u64,
    /// Nanoseconds since the bench started, when the client got the answer or gave up.
    #[serde(rename = "return")]
    pub ret: u64,
    /// `true` completed, `false` no effect, `null` unknown.
    pub ok: Option<bool>,
}

impl Record {
    /// Describes one finished operation: `outcome` is what the service answered, `call` and
    /// `ret` the times around it.
    pub fn new(
        client: usize,
        op: &KvOp,
        outcome: &Result<KvResult, ServiceError>,
        call: u64,
        ret: u64,
    ) -> Self {
        let (kind, value, expected) = fields(op);
        Record {
            client,
            key: op.key().map(text).unwrap_or_default(),
            op: kind.name(),
            value: value.map(|v| Value::String(text(v))),
            expected: expected.map(|e| e.map_or(Value::Null, |v| Value::String(text(v)))),
            output: outcome.as_ref().ok().and_then(output),
            call,
            ret,
            ok: match Completion::of(outcome) {
                Completion::Ok => Some(true),
                Completion::Failed => Some(false),
                Completion::Unknown => None,
            },
        }
    }
}

/// The kind, written value and CAS expectation of an operation.
type Fields<'a> = (Kind, Option<&'a Bytes>, Option<Option<&'a Bytes>>);

fn fields(op: &KvOp) -> Fields<'_> {
    match op {
        KvOp::Get { .. } => (Kind::Get, None, None),
        KvOp::Put { value, .. } => (Kind::Put, Some(value), None),
        KvOp::Cas { expected, new, .. } => (Kind::Cas, Some(new), Some(expected.as_ref())),
        KvOp::Delete { .. } => (Kind::Delete, None, None),
        KvOp::Freeze { .. } | KvOp::InstallPart { .. } | KvOp::Install { .. } => {
            unreachable!("the bench sends client operations only")
        }
    }
}

/// The `output` field for a result (puts have none).
fn output(result: &KvResult) -> Option<Value> {
    match result {
        KvResult::Value(v) => Some(v.as_ref().map_or(Value::Null, |v| Value::String(text(v)))),
        KvResult::Written | KvResult::Frozen(_) | KvResult::Installed => None,
        KvResult::Swapped(b) | KvResult::Deleted(b) => Some(Value::Bool(*b)),
    }
}

/// Bench keys and values are ASCII; anything else (from a foreign writer) is shown lossily.
fn text(bytes: &Bytes) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The sending side, one clone per client.
#[derive(Clone, Debug)]
pub struct HistorySink {
    tx: mpsc::Sender<String>,
}

impl HistorySink {
    /// Queues one record for writing. Serialising a plain struct cannot fail; if the writer
    /// has already stopped on an I/O error, that error is reported by [`HistoryWriter::finish`].
    pub fn push(&self, record: &Record) {
        if let Ok(line) = serde_json::to_string(record) {
            let _ = self.tx.send(line);
        }
    }
}

/// The writer thread and the file it writes.
#[derive(Debug)]
pub struct HistoryWriter {
    sink: HistorySink,
    thread: JoinHandle<io::Result<()>>,
}

impl HistoryWriter {
    /// Creates (or truncates) the file and starts the writer thread.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        let (tx, rx) = mpsc::channel::<String>();
        let thread = std::thread::Builder::new()
            .name("bench-history".into())
            .spawn(move || write_lines(BufWriter::new(file), rx))?;
        Ok(HistoryWriter {
            sink: HistorySink { tx },
            thread,
        })
    }

    /// A handle clients push records through.
    pub fn sink(&self) -> HistorySink {
        self.sink.clone()
    }

    /// Waits until every queued line is on disk. Every other sink must be dropped first,
    /// or this waits for them.
    pub fn finish(self) -> io::Result<()> {
        drop(self.sink);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("history writer panicked")))
    }
}

fn write_lines(mut out: BufWriter<File>, rx: mpsc::Receiver<String>) -> io::Result<()> {
    for line in rx {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn records_follow_the_interface_format() {
        let cas = KvOp::Cas {
            key: b("k1"),
            expected: None,
            new: b("w"),
        };
        let record = Record::new(5, &cas, &Ok(KvResult::Swapped(true)), 1500, 1600);
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"client":5,"key":"k1","op":"cas","value":"w","expected":null,"output":true,"call":1500,"return":1600,"ok":true}"#
        );
        let del = KvOp::Delete { key: b("k1") };
        let unknown = Err(ServiceError::Unknown("timeout".into()));
        assert_eq!(
            serde_json::to_string(&Record::new(6, &del, &unknown, 1700, 1800)).unwrap(),
            r#"{"client":6,"key":"k1","op":"delete","call":1700,"return":1800,"ok":null}"#
        );
        let get = KvOp::Get { key: b("k1") };
        let failed = Err(ServiceError::Unavailable("no leader".into()));
        assert_eq!(
            serde_json::to_string(&Record::new(7, &get, &failed, 1, 2)).unwrap(),
            r#"{"client":7,"key":"k1","op":"get","call":1,"return":2,"ok":false}"#
        );
        let absent = Record::new(7, &get, &Ok(KvResult::Value(None)), 3, 4);
        assert_eq!(
            serde_json::to_string(&absent).unwrap(),
            r#"{"client":7,"key":"k1","op":"get","output":null,"call":3,"return":4,"ok":true}"#
        );
    }
}
