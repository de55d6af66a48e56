//! Client histories: what each operation asked, when, and what it learnt; as JSON lines in the
//! format of INTERFACES.md.

use serde_json::{json, Value};

/// What an operation did, with its observed result when it completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    Get {
        output: Option<String>,
    },
    Put {
        value: String,
    },
    Cas {
        expected: Option<String>,
        value: String,
        output: bool,
    },
    Delete {
        existed: bool,
    },
}

/// One client operation.
#[derive(Clone, Debug)]
pub struct OpRecord {
    pub client: usize,
    pub key: String,
    pub kind: OpKind,
    pub call: u64,
    pub ret: u64,
    /// `Some(true)`: completed with `kind`'s result; `None`: unknown (result fields meaningless).
    pub ok: Option<bool>,
}

impl OpRecord {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "client": self.client,
            "key": self.key,
            "call": self.call,
            "return": self.ret,
            "ok": self.ok,
        });
        let known = self.ok == Some(true);
        let m = v.as_object_mut().expect("object");
        match &self.kind {
            OpKind::Get { output } => {
                m.insert("op".into(), json!("get"));
                if known {
                    m.insert("output".into(), json!(output));
                }
            }
            OpKind::Put { value } => {
                m.insert("op".into(), json!("put"));
                m.insert("value".into(), json!(value));
            }
            OpKind::Cas {
                expected,
                value,
                output,
            } => {
                m.insert("op".into(), json!("cas"));
                m.insert("expected".into(), json!(expected));
                m.insert("value".into(), json!(value));
                if known {
                    m.insert("output".into(), json!(output));
                }
            }
            OpKind::Delete { existed } => {
                m.insert("op".into(), json!("delete"));
                if known {
                    m.insert("output".into(), json!(existed));
                }
            }
        }
        v
    }
}

/// The whole history as JSON lines.
pub fn to_jsonl(ops: &[OpRecord]) -> String {
    let mut s = String::new();
    for op in ops {
        s.push_str(&op.to_json().to_string());
        s.push('\n');
    }
    s
}
