//! Request fields as seed 001's clients send them: `application/x-www-form-urlencoded` in the
//! query string and in the body, whatever the method (curl's `-d` sends a body with `GET`
//! too), or a flat JSON object in the body.

use std::collections::HashMap;

use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use bytes::Bytes;

use super::errors::HttpError;

/// Form fields of one request, by name; raw bytes, percent-decoded. The body's fields override
/// the query string's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    fields: HashMap<String, Vec<u8>>,
}

impl Fields {
    /// The fields of a request with this query string, headers and body.
    pub fn parse(
        query: Option<&str>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Fields, HttpError> {
        let mut fields = Fields::default();
        if let Some(query) = query {
            fields.add_urlencoded(query.as_bytes());
        }
        if body.is_empty() {
            return Ok(fields);
        }
        let json = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if json {
            fields.add_json(body)?;
        } else {
            fields.add_urlencoded(body);
        }
        Ok(fields)
    }

    /// The field's value as bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields.get(name).map(Vec::as_slice)
    }

    /// The field's value as text (invalid UTF-8 replaced).
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    fn add_urlencoded(&mut self, input: &[u8]) {
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = String::from_utf8_lossy(&decode(name, true)).into_owned();
            self.fields.insert(name, decode(value, true));
        }
    }

    fn add_json(&mut self, body: &[u8]) -> Result<(), HttpError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| HttpError::bad_request(format!("malformed JSON body: {e}")))?;
        let serde_json::Value::Object(object) = value else {
            return Err(HttpError::bad_request("a JSON body must be an object"));
        };
        for (name, value) in object {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => {
                    return Err(HttpError::bad_request(format!(
                        "field {name} must be a string or a number"
                    )))
                }
            };
            self.fields.insert(name, text.into_bytes());
        }
        Ok(())
    }
}

/// Percent-decodes `input`; with `plus_is_space` (form encoding), `+` is a space. A `%` not
/// followed by two hex digits is kept as it is, as browsers do.
pub fn decode(input: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => match (
                input.get(i + 1).and_then(hex),
                input.get(i + 2).and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode(b"a%20b+c", true), b"a b c");
        assert_eq!(decode(b"a%20b+c", false), b"a b+c");
        assert_eq!(decode(b"%zz%4", true), b"%zz%4");
        assert_eq!(decode(b"%ff%00", true), vec![0xff, 0]);
    }

    #[test]
    fn body_overrides_query() {
        let headers = HeaderMap::new();
        let body = Bytes::from_static(b"val=x%3Dy&causal_payload=&flag");
        let f = Fields::parse(Some("val=old&type=add"), &headers, &body).unwrap();
        assert_eq!(f.get("val"), Some(&b"x=y"[..]));
        assert_eq!(f.get("causal_payload"), Some(&b""[..]));
        assert_eq!(f.get("flag"), Some(&b""[..]));
        assert_eq!(f.text("type").as_deref(), Some("add"));
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn json_bodies_are_flat_objects() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        let body = Bytes::from_static(br#"{"val":"v","partition_id":1,"x":null}"#);
        let f = Fields::parse(None, &headers, &body).unwrap();
        assert_eq!(f.text("val").as_deref(), Some("v"));
        assert_eq!(f.text("partition_id").as_deref(), Some("1"));
        assert_eq!(f.get("x"), None);
        for bad in [&b"[1]"[..], b"{", br#"{"a":[1]}"#] {
            assert!(Fields::parse(None, &headers, &Bytes::copy_from_slice(bad)).is_err());
        }
    }
}
