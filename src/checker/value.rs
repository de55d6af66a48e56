//! Interning of JSON values, so that the search compares and hashes small integers instead of
//! trees.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

/// A JSON value interned in a [`History`](super::History): two values get the same id exactly
/// when they are equal as JSON (object key order and insignificant spacing do not matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

/// The table behind [`ValueId`]: a canonical encoding of every value maps to its id.
#[derive(Debug, Default)]
pub(crate) struct ValueTable {
    ids: HashMap<Box<str>, u32>,
    values: Vec<Value>,
    scratch: String,
}

impl ValueTable {
    /// Returns the id of `value`, allocating one if the value is new.
    pub(crate) fn intern(&mut self, value: Value) -> ValueId {
        self.scratch.clear();
        encode_top(&value, &mut self.scratch);
        if let Some(&id) = self.ids.get(self.scratch.as_str()) {
            return ValueId(id);
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values");
        self.ids.insert(self.scratch.as_str().into(), id);
        self.values.push(value);
        ValueId(id)
    }

    /// The value behind an id handed out by [`ValueTable::intern`].
    pub(crate) fn get(&self, id: ValueId) -> &Value {
        &self.values[id.0 as usize]
    }

    /// How many distinct values were interned.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// Writes an unambiguous encoding of a top-level value: a one-letter type tag, then a body.
/// Scalars (the common case) are written raw; only composite values need the structured form.
fn encode_top(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push('s');
            out.push_str(s);
        }
        Value::Number(_) => {
            out.push('d');
            encode_number(value, out);
        }
        _ => {
            out.push('j');
            encode(value, out);
        }
    }
}

/// Canonical JSON-like text: object keys sorted, strings quoted, `-0.0` written as `0.0`
/// (serde_json considers them equal).
fn encode(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push('n'),
        Value::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        Value::Number(_) => encode_number(value, out),
        Value::String(s) => encode_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for item in items {
                encode(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (key, item) in entries {
                encode_string(key, out);
                out.push(':');
                encode(item, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

fn encode_number(value: &Value, out: &mut String) {
    let Value::Number(n) = value else {
        unreachable!("encode_number is only called on numbers")
    };
    if n.is_f64() && n.as_f64() == Some(0.0) {
        out.push_str("0.0");
    } else {
        let _ = write!(out, "{n}");
    }
}

fn encode_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).expect("strings always serialize"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_json_values_share_an_id() {
        let mut table = ValueTable::default();
        let a = table.intern(json!({"a": [1, 2], "b": "x"}));
        let b = table.intern(serde_json::from_str(r#"{ "b":"x", "a":[1,2] }"#).unwrap());
        assert_eq!(a, b);
        assert_eq!(table.intern(json!(0.0)), table.intern(json!(-0.0)));
    }

    #[test]
    fn different_values_get_different_ids() {
        let mut table = ValueTable::default();
        let values = [
            json!(1),
            json!(1.0),
            json!("1"),
            json!([1]),
            json!(["1"]),
            json!({"1": 1}),
            json!(true),
            json!("t"),
            json!(null),
        ];
        let ids: Vec<_> = values.iter().map(|v| table.intern(v.clone())).collect();
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(table.len(), values.len());
        assert_eq!(table.get(ids[3]), &json!([1]));
    }
}
