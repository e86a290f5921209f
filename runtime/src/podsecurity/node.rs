//! The read-only view of the pod that the Pod Security checks take: a `serde_json::Value` (the
//! interpreter's resource) or a node of the parsed request tape ([`crate::doc`], the set
//! engine's), so the set engine runs the checks on the request as parsed, without rebuilding
//! the pod as a `Value` for every request.
//!
//! One small `Copy` enum rather than making every check generic: the checks are compiled once,
//! and each lookup pays one branch on the variant. Both variants answer exactly what the `Value`
//! would answer for the same JSON text: a repeated key reads as its last value and is listed
//! once, where it first appeared (serde_json's `preserve_order` map); numbers are integers only
//! when serde_json keeps them as `i64`; strings are unescaped.

use std::collections::HashSet;

use serde_json::Value;

use crate::doc::{Doc, TAG_FALSE, TAG_INT, TAG_NULL, TAG_OBJECT, TAG_TRUE};

/// One JSON value of the pod.
#[derive(Clone, Copy, Debug)]
pub enum Node<'a> {
    Json(&'a Value),
    Tape(&'a Doc<'a>, u32),
}

impl<'a> Node<'a> {
    /// The member `key` of an object (its last value if the key repeats); `None` for a missing
    /// key or a value that is not an object.
    pub fn get(self, key: &str) -> Option<Node<'a>> {
        match self {
            // The checks make dozens of lookups per container in objects of a few keys, where
            // comparing the keys in turn is cheaper than hashing the key (the map's hasher is
            // SipHash); larger objects use the map's index.
            Node::Json(Value::Object(m)) if m.len() <= 16 => m.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| Node::Json(v)),
            Node::Json(Value::Object(m)) => m.get(key).map(Node::Json),
            Node::Json(_) => None,
            Node::Tape(doc, id) => doc.get(id, key).map(|v| Node::Tape(doc, v)),
        }
    }

    pub fn is_null(self) -> bool {
        match self {
            Node::Json(v) => v.is_null(),
            Node::Tape(doc, id) => doc.node(id).tag == TAG_NULL,
        }
    }

    pub fn is_object(self) -> bool {
        match self {
            Node::Json(v) => v.is_object(),
            Node::Tape(doc, id) => doc.node(id).tag == TAG_OBJECT,
        }
    }

    pub fn as_bool(self) -> Option<bool> {
        match self {
            Node::Json(v) => v.as_bool(),
            Node::Tape(doc, id) => match doc.node(id).tag {
                TAG_TRUE => Some(true),
                TAG_FALSE => Some(false),
                _ => None,
            },
        }
    }

    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Node::Json(v) => v.as_str(),
            Node::Tape(doc, id) => doc.str(id),
        }
    }

    /// The integer `Value::as_i64` gives: integers within `i64` only, never a float (the tape
    /// keeps larger positive integers as `TAG_UINT` and `-0` as a float, as serde_json does).
    pub fn as_i64(self) -> Option<i64> {
        match self {
            Node::Json(v) => v.as_i64(),
            Node::Tape(doc, id) => {
                let n = doc.node(id);
                (n.tag == TAG_INT).then(|| (u64::from(n.a) | (u64::from(n.b) << 32)) as i64)
            }
        }
    }

    /// The elements of an array; empty for anything else.
    pub fn elements(self) -> List<'a> {
        match self {
            Node::Json(v) => List::Json(v.as_array().map(Vec::as_slice).unwrap_or_default()),
            Node::Tape(doc, id) => List::Tape(doc, doc.elems(id)),
        }
    }

    /// The members of an object, each key once in the order serde_json keeps them, with the
    /// value a lookup of the key gives; nothing for anything else.
    pub fn entries(self) -> Entries<'a> {
        match self {
            Node::Json(Value::Object(m)) => Entries::Json(m.iter()),
            Node::Json(_) => Entries::Empty,
            Node::Tape(doc, id) => {
                let members = doc.members(id);
                // A repeated key is found by looking back over the keys before it, which
                // allocates nothing; past a few dozen members that would cost quadratic time on
                // a hostile request, so large objects are deduplicated through a set instead.
                if members.len() <= 32 {
                    return Entries::Tape { doc, id, index: 0 };
                }
                let mut seen = HashSet::with_capacity(members.len());
                let unique: Vec<(&'a str, Node<'a>)> = members
                    .iter()
                    .map(|m| doc.key_of(m))
                    .filter(|k| seen.insert(*k))
                    .map(|k| (k, doc.get(id, k).map_or(Node::Tape(doc, 0), |v| Node::Tape(doc, v))))
                    .collect();
                Entries::Collected(unique.into_iter())
            }
        }
    }

    /// The `Value` of this node, for tests that compare the views with copies.
    pub fn to_value(self) -> Value {
        match self {
            Node::Json(v) => v.clone(),
            Node::Tape(doc, id) => doc.to_value(id),
        }
    }
}

/// The elements of an array of the pod, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum List<'a> {
    Json(&'a [Value]),
    Tape(&'a Doc<'a>, &'a [u32]),
}

impl<'a> List<'a> {
    pub fn len(self) -> usize {
        match self {
            List::Json(s) => s.len(),
            List::Tape(_, s) => s.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn get(self, index: usize) -> Option<Node<'a>> {
        match self {
            List::Json(s) => s.get(index).map(Node::Json),
            List::Tape(doc, s) => s.get(index).map(|&id| Node::Tape(doc, id)),
        }
    }

    pub fn iter(self) -> impl Iterator<Item = Node<'a>> {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
}

/// The iterator of [`Node::entries`].
pub enum Entries<'a> {
    Empty,
    Json(serde_json::map::Iter<'a>),
    Tape { doc: &'a Doc<'a>, id: u32, index: usize },
    Collected(std::vec::IntoIter<(&'a str, Node<'a>)>),
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, Node<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Entries::Empty => None,
            Entries::Json(it) => it.next().map(|(k, v)| (k.as_str(), Node::Json(v))),
            Entries::Collected(it) => it.next(),
            Entries::Tape { doc, id, index } => {
                let (doc, id) = (*doc, *id);
                let members = doc.members(id);
                while let Some(m) = members.get(*index) {
                    let before = members.get(..*index).unwrap_or_default();
                    *index += 1;
                    let key = doc.key_of(m);
                    if before.iter().any(|b| doc.key_of(b) == key) {
                        continue;
                    }
                    let value = doc.get(id, key).unwrap_or(m.value);
                    return Some((key, Node::Tape(doc, value)));
                }
                None
            }
        }
    }
}
