//! Plain YAML documents straight to JSON values: the fast path for loading resources.
//!
//! A scan of fifty thousand manifests needs each resource's value and the line it starts on,
//! not a span for every node; building the spanned tree ([`super::parse`]) and then copying it
//! into JSON ([`super::to_json`]) costs twice the allocations. This builder turns saphyr's
//! events into `serde_json` values directly, with the same scalar resolution
//! ([`super::resolve_plain`]) and the same key rules as `to_json`.
//!
//! It only takes the common subset: no anchors, aliases, tags or merge keys, no collection
//! keys, no syntax error. For anything else it answers `None`, and the caller parses the
//! document with [`super::parse`], which stays the one definition of Palisade's YAML (its
//! diagnostics included); the tests check that both paths give the same values and positions.

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value as J};

use super::{MAX_DEPTH, Value, format_float, resolve_plain};

/// One document of a chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct PlainDoc {
    pub value: J,
    /// 1-based line and column (in characters) of the root node, relative to the chunk.
    pub at: (u32, u32),
    /// When the root is a mapping with an `items` sequence: the position of each item, in
    /// order (`List` dumps report each item at its own line).
    pub items: Vec<(u32, u32)>,
}

/// A collection being built.
enum Open {
    Seq(Vec<J>),
    Map { map: Map<String, J>, key: Option<String> },
}

/// The documents of `chunk`, or `None` when the chunk needs the full parser (see the module
/// documentation). Documents that hold nothing (a comment, an empty chunk) are left out.
pub fn parse_plain(chunk: &str) -> Option<Vec<PlainDoc>> {
    let mut docs = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut root_at: Option<(u32, u32)> = None;
    let mut items: Vec<(u32, u32)> = Vec::new();
    let mut root: Option<J> = None;
    for event in Parser::new_from_str(chunk) {
        let (event, span) = event.ok()?;
        let at = (u32::try_from(span.start.line()).ok()?, u32::try_from(span.start.col()).ok()?.saturating_add(1));
        // An item of the root mapping's `items` sequence starts here.
        if let [Open::Map { key: Some(k), .. }, Open::Seq(_)] = stack.as_slice()
            && k == "items"
            && matches!(event, Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..))
        {
            items.push(at);
        }
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentStart(_) => continue,
            Event::DocumentEnd => {
                if let Some(value) = root.take() {
                    docs.push(PlainDoc { value, at: root_at.take().unwrap_or((1, 1)), items: std::mem::take(&mut items) });
                }
                root_at = None;
                items.clear();
                continue;
            }
            Event::Alias(_) => return None,
            Event::Scalar(text, style, anchor, tag) => {
                if anchor > 0 || tag.is_some() {
                    return None;
                }
                let resolved = if style == ScalarStyle::Plain { resolve_plain(&text) } else { Value::Null };
                let is_str = style != ScalarStyle::Plain || matches!(resolved, Value::Str(_));
                // A key is written as `to_json` writes it (`Node::as_key`).
                if let Some(Open::Map { key: key @ None, .. }) = stack.last_mut() {
                    *key = Some(match resolved {
                        _ if is_str && style == ScalarStyle::Plain && text == "<<" => return None,
                        _ if is_str => text.into_owned(),
                        Value::Null => "null".to_owned(),
                        Value::Bool(b) => if b { "true" } else { "false" }.to_owned(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => format_float(f),
                        Value::Str(_) | Value::Seq(_) | Value::Map(_) => return None,
                    });
                    continue;
                }
                match resolved {
                    _ if is_str => J::String(text.into_owned()),
                    Value::Bool(b) => J::Bool(b),
                    Value::Int(i) => J::from(i),
                    Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
                    _ => J::Null,
                }
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                // Collection keys, and nesting past the limit, are the full parser's business.
                let key_expected = matches!(stack.last(), Some(Open::Map { key: None, .. }));
                if anchor > 0 || tag.is_some() || stack.len() >= MAX_DEPTH || key_expected {
                    return None;
                }
                if stack.is_empty() {
                    root_at = Some(at);
                }
                stack.push(match event {
                    Event::SequenceStart(..) => Open::Seq(Vec::new()),
                    _ => Open::Map { map: Map::new(), key: None },
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop()? {
                Open::Seq(items) => J::Array(items),
                Open::Map { mut map, key } => {
                    // A key without a value has a null value.
                    if let Some(k) = key
                        && map.insert(k, J::Null).is_some()
                    {
                        return None;
                    }
                    J::Object(map)
                }
            },
        };
        match stack.last_mut() {
            Some(Open::Seq(items)) => items.push(node),
            Some(Open::Map { map, key }) => match key.take() {
                Some(k) => {
                    // A repeated key: the full parser keeps the first for the checker.
                    if map.insert(k, node).is_some() {
                        return None;
                    }
                }
                // Keys are taken when their scalar arrives.
                None => return None,
            },
            None => {
                if root_at.is_none() {
                    root_at = Some(at);
                }
                root = Some(node);
            }
        }
    }
    if let Some(value) = root {
        docs.push(PlainDoc { value, at: root_at.unwrap_or((1, 1)), items });
    }
    docs.retain(|d| !d.value.is_null());
    Some(docs)
}
