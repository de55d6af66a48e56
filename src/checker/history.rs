//! Reading a recorded history (JSON lines) into interned, validated operations.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::BufRead;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::value::{ValueId, ValueTable};

/// What the client learnt about an operation; it decides how the operation constrains the
/// search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `ok: true`: the operation took effect once, with the recorded result.
    Ok,
    /// `ok: false`: the operation certainly had no effect; the checker ignores it.
    Failed,
    /// `ok: null`: the outcome is unknown; it may take effect at any time after its call, or
    /// never.
    Unknown,
}

/// The operation and the result the client saw; results are only meaningful for
/// [`Outcome::Ok`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Read the key; `output` is `None` when the key was absent.
    Get {
        /// The value read, `None` for an absent key (or an unknown outcome).
        output: Option<ValueId>,
    },
    /// Write `value`.
    Put {
        /// The value written.
        value: ValueId,
    },
    /// Write `value` if the current value is `expected` (`None`: the key is absent).
    Cas {
        /// The value the key must hold for the swap; `None` means absent.
        expected: Option<ValueId>,
        /// The value written on a swap.
        value: ValueId,
        /// Whether the swap happened; `None` when the outcome is unknown.
        swapped: Option<bool>,
    },
    /// Remove the key.
    Delete {
        /// Whether the key existed, when the recorder reported it.
        existed: Option<bool>,
    },
}

/// One line of the history, validated and interned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// 1-based line of the input, so reports can point back at the file.
    pub line: usize,
    /// Index of the client's name in [`History::client_name`].
    pub client: u32,
    /// Index of the key's name in [`History::key_name`].
    pub key: u32,
    /// Invocation time (nanoseconds, or any clock shared by all clients).
    pub call: u64,
    /// Completion time; `None` when the operation never returned (or its outcome is unknown,
    /// which the checker treats alike).
    pub ret: Option<u64>,
    /// What the client learnt.
    pub outcome: Outcome,
    /// The operation and its result.
    pub kind: OpKind,
}

/// Why a history could not be read; always names the offending line so the user can fix the
/// recorder.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// A line is not a valid operation.
    #[error("line {line}: {message}")]
    Invalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The input could not be read.
    #[error("line {line}: cannot read the input: {source}")]
    Io {
        /// 1-based number of the line being read.
        line: usize,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A whole recorded history: operations in file order plus the tables their ids refer to.
#[derive(Debug, Default)]
pub struct History {
    ops: Vec<Operation>,
    keys: Names,
    clients: Names,
    values: ValueTable,
}

impl History {
    /// Reads JSON lines (one operation per line; blank lines are skipped; unknown fields are
    /// ignored, so recorders may add their own).
    pub fn parse<R: BufRead>(mut reader: R) -> Result<History, ParseError> {
        let mut history = History::default();
        let mut buf = Vec::with_capacity(256);
        let mut line = 0;
        loop {
            buf.clear();
            line += 1;
            let read = reader
                .read_until(b'\n', &mut buf)
                .map_err(|source| ParseError::Io { line, source })?;
            if read == 0 {
                return Ok(history);
            }
            while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            history
                .push_line(&buf, line)
                .map_err(|message| ParseError::Invalid { line, message })?;
        }
    }

    /// Convenience for tests and tools that hold the history in memory.
    pub fn parse_str(text: &str) -> Result<History, ParseError> {
        History::parse(text.as_bytes())
    }

    /// All operations, in file order.
    pub fn ops(&self) -> &[Operation] {
        &self.ops
    }

    /// The name of a key id found in [`Operation::key`].
    pub fn key_name(&self, key: u32) -> &str {
        self.keys.name(key)
    }

    /// How many distinct keys the history touches.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The name of a client id found in [`Operation::client`].
    pub fn client_name(&self, client: u32) -> &str {
        self.clients.name(client)
    }

    /// The JSON value behind an interned id.
    pub fn value(&self, id: ValueId) -> &Value {
        self.values.get(id)
    }

    fn push_line(&mut self, bytes: &[u8], line: usize) -> Result<(), String> {
        let raw: RawRecord<'_> = serde_json::from_slice(bytes).map_err(describe)?;
        let op = self.validate(raw, line)?;
        self.ops.push(op);
        Ok(())
    }

    fn validate(&mut self, raw: RawRecord<'_>, line: usize) -> Result<Operation, String> {
        let outcome = match raw.ok {
            None => return Err(missing("ok")),
            Some(Some(true)) => Outcome::Ok,
            Some(Some(false)) => Outcome::Failed,
            Some(None) => Outcome::Unknown,
        };
        let ret = match outcome {
            Outcome::Unknown => None,
            _ => Some(raw.ret.ok_or_else(|| missing("return"))?),
        };
        if let Some(ret) = raw.ret {
            if ret < raw.call {
                return Err(format!(
                    "\"return\" ({ret}) is before \"call\" ({})",
                    raw.call
                ));
            }
        }
        let kind = self.kind(raw.op, raw.value, raw.expected, raw.output, outcome)?;
        Ok(Operation {
            line,
            client: self.clients.intern(&raw.client),
            key: self.keys.intern(&raw.key),
            call: raw.call,
            ret,
            outcome,
            kind,
        })
    }

    fn kind(
        &mut self,
        op: RawOp,
        value: Option<Value>,
        expected: Option<Value>,
        output: Option<Value>,
        outcome: Outcome,
    ) -> Result<OpKind, String> {
        let known = outcome == Outcome::Ok;
        Ok(match op {
            RawOp::Get => OpKind::Get {
                output: match (known, output) {
                    (false, _) => None,
                    (true, None) => return Err(missing("output")),
                    (true, Some(v)) => self.optional_value(v),
                },
            },
            RawOp::Put => OpKind::Put {
                value: self.required_value("value", value)?,
            },
            RawOp::Cas => OpKind::Cas {
                expected: self.optional_value(expected.ok_or_else(|| missing("expected"))?),
                value: self.required_value("value", value)?,
                swapped: match known {
                    false => None,
                    true => Some(boolean(output.ok_or_else(|| missing("output"))?)?),
                },
            },
            RawOp::Delete => OpKind::Delete {
                existed: match (known, output) {
                    (true, Some(v)) if !v.is_null() => Some(boolean(v)?),
                    _ => None,
                },
            },
        })
    }

    /// `null` stands for "absent" in reads and CAS expectations.
    fn optional_value(&mut self, value: Value) -> Option<ValueId> {
        (!value.is_null()).then(|| self.values.intern(value))
    }

    /// Written values cannot be `null`: a later read of `null` would be indistinguishable from
    /// an absent key.
    fn required_value(&mut self, field: &str, value: Option<Value>) -> Result<ValueId, String> {
        match value {
            None => Err(missing(field)),
            Some(Value::Null) => Err(format!("field \"{field}\" must not be null")),
            Some(v) => Ok(self.values.intern(v)),
        }
    }
}

fn missing(field: &str) -> String {
    format!("missing field \"{field}\"")
}

fn boolean(value: Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("field \"output\" must be a boolean, found {value}"))
}

/// serde_json appends "at line 1 column N" (always line 1 here, since each line is parsed on
/// its own); keep the column only where it helps (syntax errors) and quote field names the
/// way the rest of our messages do.
fn describe(err: serde_json::Error) -> String {
    let text = err.to_string();
    let message = match text.rfind(" at line ") {
        Some(cut) => &text[..cut],
        None => &text,
    };
    let message = message.replace('`', "\"");
    match err.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            format!("invalid JSON: {message} (column {})", err.column())
        }
        _ => message,
    }
}

/// Interned names of keys or clients, in order of first appearance.
#[derive(Debug, Default)]
struct Names {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 names");
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        id
    }

    fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    fn len(&self) -> usize {
        self.names.len()
    }
}

/// One line as written; validation into an [`Operation`] happens afterwards.
#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    client: Name<'a>,
    #[serde(borrow)]
    key: Name<'a>,
    op: RawOp,
    call: u64,
    #[serde(rename = "return", default)]
    ret: Option<u64>,
    #[serde(default, deserialize_with = "present")]
    ok: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    expected: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    output: Option<Value>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawOp {
    Get,
    Put,
    Cas,
    Delete,
}

/// Distinguishes a field written as `null` (`Some(null)`) from a missing one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A key or client name: recorders write strings or integers; both become text.
struct Name<'a>(Cow<'a, str>);

impl std::ops::Deref for Name<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Name<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an integer")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(v.to_owned())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Name(Cow::Owned(v.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> String {
        History::parse_str(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_the_documented_format() {
        let text = r#"{"client":3,"key":"k1","op":"put","value":"v","call":1200,"return":1850,"ok":true}
{"client":4,"key":"k1","op":"get","output":"v","call":1300,"return":1400,"ok":true}

{"client":5,"key":"k1","op":"cas","expected":"v","value":"w","output":true,"call":1500,"return":1600,"ok":true}
{"client":"c6","key":"k2","op":"delete","call":1700,"return":1800,"ok":null,"extra":[1]}
"#;
        let history = History::parse_str(text).unwrap();
        let ops = history.ops();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[3].line, 5);
        assert_eq!(ops[3].ret, None);
        assert_eq!(ops[3].outcome, Outcome::Unknown);
        assert_eq!(history.client_name(ops[3].client), "c6");
        assert_eq!(history.key_name(ops[3].key), "k2");
        assert_eq!(history.key_count(), 2);
        let OpKind::Get { output: Some(v) } = ops[1].kind else {
            panic!("get expected")
        };
        assert_eq!(history.value(v), "v");
        assert!(matches!(
            ops[2].kind,
            OpKind::Cas {
                swapped: Some(true),
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_line_and_the_problem() {
        let good =
            r#"{"client":1,"key":"x","op":"get","output":null,"call":1,"return":2,"ok":true}"#;
        let text = format!(
            "{good}\n{}\n",
            r#"{"client":1,"key":"x","op":"get","ok":true}"#
        );
        assert_eq!(error_of(&text), "line 2: missing field \"call\"");
        let bad_op = r#"{"client":1,"key":"x","op":"incr","call":1,"return":2,"ok":true}"#;
        assert!(error_of(bad_op).starts_with("line 1: unknown variant \"incr\""));
        assert!(error_of("{\"client\":").starts_with("line 1: invalid JSON"));
        let no_output = r#"{"client":1,"key":"x","op":"get","call":1,"return":2,"ok":true}"#;
        assert_eq!(error_of(no_output), "line 1: missing field \"output\"");
        let backwards =
            r#"{"client":1,"key":"x","op":"put","value":1,"call":5,"return":2,"ok":true}"#;
        assert!(error_of(backwards).contains("before \"call\""));
        let null_put =
            r#"{"client":1,"key":"x","op":"put","value":null,"call":1,"return":2,"ok":true}"#;
        assert_eq!(
            error_of(null_put),
            "line 1: field \"value\" must not be null"
        );
        let no_ok = r#"{"client":1,"key":"x","op":"put","value":1,"call":1,"return":2}"#;
        assert_eq!(error_of(no_ok), "line 1: missing field \"ok\"");
    }

    #[test]
    fn results_of_unsure_operations_are_ignored() {
        let text = r#"{"client":1,"key":"x","op":"cas","expected":null,"value":2,"call":1,"ok":null}
{"client":1,"key":"x","op":"get","call":3,"return":4,"ok":false}"#;
        let history = History::parse_str(text).unwrap();
        assert!(matches!(
            history.ops()[0].kind,
            OpKind::Cas {
                expected: None,
                swapped: None,
                ..
            }
        ));
        assert_eq!(history.ops()[1].kind, OpKind::Get { output: None });
    }
}
