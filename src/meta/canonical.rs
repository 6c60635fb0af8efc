//! A hash of a JSON value that ignores key order and formatting, for events that carry no id of
//! their own: Meta may re-serialise a retried body, but the value it describes is the same.

use sha2::{Digest, Sha256};
use simd_json::prelude::*;
use simd_json::{BorrowedValue, StaticNode};

/// Hex of the first 16 bytes of SHA-256 over a canonical encoding of `value`.
pub fn canonical_hash(value: &BorrowedValue<'_>) -> String {
    let mut hasher = Sha256::new();
    feed(&mut hasher, value);
    hex::encode(&hasher.finalize()[..16])
}

// Every item is length- or type-prefixed, so no two different values feed the same bytes.
fn feed(h: &mut Sha256, value: &BorrowedValue<'_>) {
    match value {
        BorrowedValue::Static(node) => match node {
            StaticNode::Null => h.update(b"n"),
            StaticNode::Bool(true) => h.update(b"t"),
            StaticNode::Bool(false) => h.update(b"f"),
            StaticNode::I64(n) => h.update(format!("i{n};").as_bytes()),
            StaticNode::U64(n) => h.update(format!("i{n};").as_bytes()),
            StaticNode::F64(x) => h.update(format!("d{x};").as_bytes()),
        },
        BorrowedValue::String(s) => {
            h.update(format!("s{}:", s.len()).as_bytes());
            h.update(s.as_bytes());
        }
        BorrowedValue::Array(items) => {
            h.update(b"[");
            for item in items.iter() {
                feed(h, item);
            }
            h.update(b"]");
        }
        BorrowedValue::Object(map) => {
            let mut keys: Vec<_> = map.iter().collect();
            keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
            h.update(b"{");
            for (k, v) in keys {
                h.update(format!("k{}:", k.len()).as_bytes());
                h.update(k.as_bytes());
                feed(h, v);
            }
            h.update(b"}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(json: &str) -> String {
        let mut bytes = json.as_bytes().to_vec();
        let value = simd_json::to_borrowed_value(&mut bytes).expect("valid json");
        canonical_hash(&value)
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        assert_eq!(
            hash(r#"{"a":1,"b":[1,"x"]}"#),
            hash(r#"{ "b": [1, "x"], "a": 1 }"#)
        );
    }

    #[test]
    fn escaped_and_raw_unicode_are_the_same_text() {
        assert_eq!(hash(r#"{"t":"caf\u00e9"}"#), hash(r#"{"t":"café"}"#));
    }

    #[test]
    fn different_values_differ() {
        assert_ne!(hash(r#"{"a":1}"#), hash(r#"{"a":"1"}"#));
        assert_ne!(hash(r#"["ab","c"]"#), hash(r#"["a","bc"]"#));
    }
}
