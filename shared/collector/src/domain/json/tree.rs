//! A JSON value borrowed from its text, and the canonical encoding the content hash is taken of.
//!
//! [`Node`] is what ingest builds for a workflow instead of a `serde_json::Value`: strings
//! without escapes stay slices of the body, and objects are plain vectors, not hash maps. It
//! keeps `Value`'s meaning exactly (serde_json with `preserve_order`): keys in the order first
//! seen, a repeated key's last value, numbers as serde_json parses them. So its compact text
//! (`serde_json::to_vec(&node)`) is byte for byte the text of the `Value` of the same input, and
//! its canonical encoding is the one [`super::canonical_hash`] has always hashed.

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    /// Entries in the order their keys were first seen; no key twice.
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// The tree of a JSON text. The caller bounds its depth and size first (`check_shape`).
    pub fn parse(text: &'a [u8]) -> serde_json::Result<Node<'a>> {
        serde_json::from_slice(text)
    }

    /// A `Value` seen as a tree (nothing copied but numbers).
    pub fn of(v: &'a Value) -> Node<'a> {
        match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Number(n.clone()),
            Value::String(s) => Node::String(Cow::Borrowed(s)),
            Value::Array(a) => Node::Array(a.iter().map(Node::of).collect()),
            Value::Object(m) => Node::of_map(m),
        }
    }

    /// An object `Value` seen as a tree.
    pub fn of_map(m: &'a Map<String, Value>) -> Node<'a> {
        Node::Object(m.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), Node::of(v))).collect())
    }

    /// The compact JSON text: what `serde_json::to_vec` writes for the `Value` of the same input.
    pub fn compact(&self) -> Vec<u8> {
        // Serializing into a Vec cannot fail (string keys only).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Write the canonical encoding: object keys sorted, strings length-prefixed, numbers as
    /// their JSON text. Key order does not change it; any other change does.
    pub fn write_canonical(&self, w: &mut impl Write) {
        match self {
            Node::Null => put(w, b"n"),
            Node::Bool(b) => put(w, if *b { b"t" } else { b"f" }),
            Node::Number(n) => {
                // Writing into a hasher or a Vec cannot fail.
                let _ = write!(w, "#{n};");
            }
            Node::String(s) => write_canonical_str(w, s),
            Node::Array(a) => {
                put(w, b"[");
                put(w, &(a.len() as u64).to_be_bytes());
                for x in a {
                    x.write_canonical(w);
                }
            }
            Node::Object(m) => {
                let mut entries: Vec<&(Cow<'_, str>, Node<'_>)> = m.iter().collect();
                // Keys are unique, so the unstable sort is exact.
                entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                put(w, b"{");
                put(w, &(entries.len() as u64).to_be_bytes());
                for (k, v) in entries {
                    write_canonical_str(w, k);
                    v.write_canonical(w);
                }
            }
        }
    }
}

/// A string, length-prefixed so ("ab","c") and ("a","bc") differ.
pub fn write_canonical_str(w: &mut impl Write, s: &str) {
    put(w, b"s");
    put(w, &(s.len() as u64).to_be_bytes());
    put(w, s.as_bytes());
}

fn put(w: &mut impl Write, bytes: &[u8]) {
    // The writers here are a hasher or a Vec, which cannot fail.
    let _ = w.write_all(bytes);
}

/// A repeated key keeps the place it was first seen at and takes its last value (`Value`'s
/// `IndexMap` does the same). Objects hardly ever repeat a key, so it is checked first.
fn dedupe<'a>(entries: Vec<(Cow<'a, str>, Node<'a>)>) -> Vec<(Cow<'a, str>, Node<'a>)> {
    let n = entries.len();
    let repeats = if n <= 8 {
        (1..n).any(|i| (0..i).any(|j| entries[i].0 == entries[j].0))
    } else {
        let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
        keys.sort_unstable();
        keys.windows(2).any(|w| w[0] == w[1])
    };
    if !repeats {
        return entries;
    }
    let mut place: std::collections::HashMap<Cow<'a, str>, usize> = std::collections::HashMap::with_capacity(n);
    let mut out: Vec<(Cow<'a, str>, Node<'a>)> = Vec::with_capacity(n);
    for (k, v) in entries {
        match place.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                place.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Node<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor(PhantomData))
    }
}

/// Builds [`Node`]s the way `Value`'s visitor builds `Value`s (same number conversions).
struct NodeVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for NodeVisitor<'a> {
    type Value = Node<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node<'a>, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Node<'a>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Node<'a>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Node<'a>, E> {
        Ok(Number::from_f64(n).map_or(Node::Null, Node::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Node<'a>, E> {
        Ok(Node::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node<'a>, E> {
        Ok(Node::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Node<'a>, E> {
        Ok(Node::String(Cow::Owned(s)))
    }
    fn visit_none<E>(self) -> Result<Node<'a>, E> {
        Ok(Node::Null)
    }
    fn visit_unit<E>(self) -> Result<Node<'a>, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node<'a>, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'a>, A::Error> {
        let mut items = Vec::new();
        while let Some(x) = seq.next_element()? {
            items.push(x);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'a>, A::Error> {
        let mut entries = Vec::new();
        while let Some(Key(k)) = map.next_key()? {
            entries.push((k, map.next_value()?));
        }
        Ok(Node::Object(dedupe(entries)))
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Null => s.serialize_unit(),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::Number(n) => n.serialize(s),
            Node::String(x) => s.serialize_str(x),
            Node::Array(a) => s.collect_seq(a),
            Node::Object(m) => s.collect_map(m.iter().map(|(k, v)| (k.as_ref(), v))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_value(text: &str) {
        let value: Value = serde_json::from_str(text).expect("value");
        let node = Node::parse(text.as_bytes()).expect("node");
        assert_eq!(node.compact(), serde_json::to_vec(&value).expect("compact"), "{text}");
        assert_eq!(node, Node::of(&value), "{text}");
    }

    #[test]
    fn compact_text_is_the_values_text() {
        for text in [
            r#"{"b": 1, "a": [true, false, null, -0, 0.0, -1.5e-7, 1e300, 18446744073709551615, -9223372036854775808]}"#,
            r#"{"s": "tab\t quote\" slash\/ \u00e9 \ud83d\ude00 \u0000", "k\"ey": {}}"#,
            r#"{"a": 1, "b": 2, "a": {"x": 3}, "c": [], "b": null}"#,
            r#"{"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k3":"again"}"#,
            r#"[123456789012345678901234567890, 0.1, 2.5E+3, 1E400]"#,
            r#""just a string""#,
        ] {
            if serde_json::from_str::<Value>(text).is_ok() {
                same_as_value(text);
            } else {
                assert!(Node::parse(text.as_bytes()).is_err(), "{text}");
            }
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let text = br#"{"plain": "text", "esc\n": "a\"b"}"#;
        let Node::Object(m) = Node::parse(text).expect("node") else { panic!("object") };
        assert!(matches!(m[0].0, Cow::Borrowed(_)) && matches!(m[0].1, Node::String(Cow::Borrowed(_))));
        assert!(matches!(m[1].0, Cow::Owned(_)) && matches!(m[1].1, Node::String(Cow::Owned(_))));
    }
}
