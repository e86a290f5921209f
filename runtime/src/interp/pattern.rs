//! The reference executor of the pattern IR: Kyverno's `validate.MatchPattern`.
//!
//! The walk mirrors Kyverno's, decision for decision, because users depend on its corners: the
//! first pattern element of a list applies to every resource element, conditional anchors turn
//! mismatches into skips, `"*"` on an absent key reports the parent path, and so on. Errors carry
//! the path Kyverno reports (`/spec/containers/0/image/`) and a message in Kyverno's words.
//!
//! The walk is generic over [`Tree`], a read-only view of a JSON value: the interpreter walks
//! `serde_json::Value`s, and the set engine walks the matching document ([`crate::doc`]) with the
//! same code, so a failure found by native code gets its path and message without converting
//! the request to a `Value`.

use serde_json::Value;

use palisade_compiler::ir::pattern::{Entry, Node, NodeId, Pattern};
use palisade_compiler::pattern::AnchorKind;

use super::gofmt;
use super::scalar::{self, Scalar};
use crate::doc::Doc;

/// Why a pattern did not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// A conditional or global anchor did not hold: the rule does not apply.
    Skip { message: String },
    /// The resource violates the pattern at `path`.
    Fail { path: String, message: String },
    /// Kyverno reports these as rule errors: a structural problem with no path (for example an
    /// array shorter than a positional pattern), or an anchor key missing from the resource.
    Error { message: String },
}

/// A read-only view of one JSON value, for the walk.
pub trait Tree: Copy {
    fn scalar(&self) -> Scalar<'_>;
    /// The member `key` of an object (the last one if the key repeats); `None` otherwise.
    fn get(self, key: &str) -> Option<Self>;
    /// A JSON `null` of the same tree, for absent keys.
    fn null(self) -> Self;
    /// The number of elements of an array (0 for anything else).
    fn len(self) -> usize;
    /// Whether the value has no elements: an empty array, or anything that is not an array.
    fn is_empty(self) -> bool {
        self.len() == 0
    }
    /// Element `i` of an array.
    fn at(self, i: usize) -> Option<Self>;
    /// An object's keys, each once, in the order `serde_json` keeps them.
    fn keys(self) -> Vec<String>;
    /// Go's `%v` of the value, for messages.
    fn gofmt(self) -> String;
    /// Go's `%T` of the value, for messages.
    fn go_type(self) -> &'static str;
}

impl Tree for &Value {
    fn scalar(&self) -> Scalar<'_> {
        Scalar::of(self)
    }
    fn get(self, key: &str) -> Option<Self> {
        self.as_object()?.get(key)
    }
    fn null(self) -> Self {
        &Value::Null
    }
    fn len(self) -> usize {
        self.as_array().map_or(0, Vec::len)
    }
    fn at(self, i: usize) -> Option<Self> {
        self.as_array()?.get(i)
    }
    fn keys(self) -> Vec<String> {
        self.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }
    fn gofmt(self) -> String {
        gofmt::v(self)
    }
    fn go_type(self) -> &'static str {
        go_type(self)
    }
}

/// A node of a parsed document.
#[derive(Clone, Copy)]
pub struct DocNode<'d, 'a> {
    pub doc: &'d Doc<'a>,
    pub id: u32,
}

impl Tree for DocNode<'_, '_> {
    fn scalar(&self) -> Scalar<'_> {
        self.doc.scalar(self.id)
    }
    fn get(self, key: &str) -> Option<Self> {
        self.doc.get(self.id, key).map(|id| DocNode { id, ..self })
    }
    fn null(self) -> Self {
        // Node 0 of every document is a JSON null.
        DocNode { id: 0, ..self }
    }
    fn len(self) -> usize {
        self.doc.elems(self.id).len()
    }
    fn at(self, i: usize) -> Option<Self> {
        self.doc.elems(self.id).get(i).map(|&id| DocNode { id, ..self })
    }
    fn keys(self) -> Vec<String> {
        // `serde_json` keeps a repeated key once, where it first appeared.
        let mut out: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for m in self.doc.members(self.id) {
            let k = self.doc.key_of(m);
            if seen.insert(k) {
                out.push(k.to_owned());
            }
        }
        out
    }
    fn gofmt(self) -> String {
        gofmt::v(&self.doc.to_value(self.id))
    }
    fn go_type(self) -> &'static str {
        match self.doc.scalar(self.id) {
            Scalar::Null => "<nil>",
            Scalar::Bool(_) => "bool",
            Scalar::Float(_) => "float64",
            Scalar::Int(_) | Scalar::UInt(_) => "int64",
            Scalar::Str(_) => "string",
            Scalar::Array => "[]interface {}",
            Scalar::Object => "map[string]interface {}",
        }
    }
}

/// The elements of an array, in order (none for anything else).
fn elements<T: Tree>(array: T) -> impl Iterator<Item = T> {
    (0..array.len()).filter_map(move |i| array.at(i))
}

fn is_object<T: Tree>(t: &T) -> bool {
    matches!(t.scalar(), Scalar::Object)
}

fn is_array<T: Tree>(t: &T) -> bool {
    matches!(t.scalar(), Scalar::Array)
}

/// Matches `resource` against `pattern` the way Kyverno's `MatchPattern` does.
pub fn match_pattern(resource: &Value, pattern: &Pattern) -> Result<(), Mismatch> {
    match_tree_worded(resource, pattern)
}

/// [`match_pattern`] over any [`Tree`], for callers that report a failure by its path alone,
/// as a rule's status and message do: the failure's own words are not written, so the
/// `message` of a [`Mismatch::Fail`] is empty. Skips and errors are worded in full.
pub fn match_tree<T: Tree>(resource: T, pattern: &Pattern) -> Result<(), Mismatch> {
    walk_tree(resource, pattern, false)
}

/// [`match_pattern`] over any [`Tree`], every mismatch worded.
pub fn match_tree_worded<T: Tree>(resource: T, pattern: &Pattern) -> Result<(), Mismatch> {
    walk_tree(resource, pattern, true)
}

fn walk_tree<T: Tree>(resource: T, pattern: &Pattern, fail_words: bool) -> Result<(), Mismatch> {
    let mut walk = Walk { pattern, anchors: Vec::new() };
    let mut path = String::from("/");
    let Err(err) = walk.element(resource, pattern.root(), &mut path, 0) else {
        return Ok(());
    };
    if err.is_skip() {
        return Err(Mismatch::Skip { message: err.into_message() });
    }
    let fail = |err: Error<'_, T>| {
        let message = if fail_words { err.words.render(&err.path) } else { String::new() };
        Err(Mismatch::Fail { path: err.path, message })
    };
    if err.is_negation() {
        return fail(err);
    }
    // An anchor of the pattern that never met its key anywhere in the resource makes Kyverno
    // report an error rather than a failure.
    if walk.keys_are_missing() || err.path.is_empty() {
        return Err(Mismatch::Error { message: err.into_message() });
    }
    fail(err)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Conditional,
    Global,
    Negation,
    Other,
}

/// Kyverno's prefixes for anchor errors. Kyverno classifies errors partly by these texts (an
/// error that merely *contains* one counts), and so do we.
const CONDITIONAL: &str = "conditional anchor mismatch";
const GLOBAL: &str = "global anchor mismatch";
const NEGATION: &str = "negation anchor matched in resource";

/// An error of the walk. Its words are kept as their parts until they are read: most
/// failures are reported by their path alone, and the failures of an existence anchor's
/// candidates are dropped, so the text is written only for what shows.
#[derive(Debug)]
struct Error<'p, T> {
    kind: Kind,
    path: String,
    words: Words<'p, T>,
}

/// What an [`Error`] says. The variants that name the path print the error's own path.
#[derive(Debug)]
enum Words<'p, T> {
    Text(String),
    Fixed(&'static str),
    /// `pattern and resource have different structures. Path: {path}. Expected
    /// map[string]interface {}, found {type}`.
    Structure(&'static str),
    /// `validation rule failed at path {path}, resource does not satisfy the expected overlay
    /// pattern`.
    Overlay,
    /// `resource value '{value}' does not match '{pattern}' at path {path}`.
    Value(T, &'p Node),
    /// `negation anchor matched in resource: {path} is not allowed`.
    Negation,
    /// `existence anchor validation failed at path {path}`.
    Existence,
    /// `invalid resource type {type}: Existence ^ () anchor can be used only on list/array type
    /// resource`.
    ExistenceResource(&'static str),
    /// `invalid pattern type {type}: Pattern has to be of list to compare against resource`.
    ExistencePattern(&'static str),
}

impl<T: Tree> Words<'_, T> {
    /// The text, for an error at `path`.
    fn render(&self, path: &str) -> String {
        match self {
            Words::Text(text) => text.clone(),
            Words::Fixed(text) => (*text).to_owned(),
            Words::Structure(found) => {
                format!("pattern and resource have different structures. Path: {path}. Expected map[string]interface {{}}, found {found}")
            }
            Words::Overlay => format!("validation rule failed at path {path}, resource does not satisfy the expected overlay pattern"),
            Words::Value(value, node) => {
                format!("resource value '{}' does not match '{}' at path {path}", value.gofmt(), scalar_text(node))
            }
            Words::Negation => format!("{NEGATION}: {path} is not allowed"),
            Words::Existence => format!("existence anchor validation failed at path {path}"),
            Words::ExistenceResource(found) => {
                format!("invalid resource type {found}: Existence ^ () anchor can be used only on list/array type resource")
            }
            Words::ExistencePattern(found) => format!("invalid pattern type {found}: Pattern has to be of list to compare against resource"),
        }
    }

    /// Whether the text (for an error at `path`) contains `phrase`, one of the anchor phrases,
    /// reading the parts where that is the same: the fixed words around a part begin and end
    /// with characters (`'`, `.`, `,`, `:` and the space after them) that no anchor phrase
    /// holds at that end, so a phrase cannot start or end inside them and must lie within
    /// one part.
    fn mentions(&self, path: &str, phrase: &str) -> bool {
        match self {
            Words::Text(text) => mentions(text, phrase),
            Words::Fixed(text) => mentions(text, phrase),
            Words::Structure(_) | Words::Overlay | Words::Existence => mentions(path, phrase),
            Words::Value(value, node) => {
                let value_mentions = match value.scalar() {
                    Scalar::Str(s) => mentions(s, phrase),
                    Scalar::Null | Scalar::Bool(_) | Scalar::Float(_) | Scalar::Int(_) | Scalar::UInt(_) => false,
                    // A list or map prints its items with spaces between them, which a phrase
                    // may span.
                    Scalar::Array | Scalar::Object => mentions(&value.gofmt(), phrase),
                };
                value_mentions || matches!(node, Node::Str(p) if mentions(&p.raw, phrase)) || mentions(path, phrase)
            }
            Words::Negation | Words::ExistenceResource(_) | Words::ExistencePattern(_) => mentions(&self.render(path), phrase),
        }
    }
}

impl<'p, T: Tree> Error<'p, T> {
    fn other(path: &str, words: Words<'p, T>) -> Self {
        Error { kind: Kind::Other, path: path.to_owned(), words }
    }

    fn message(&self) -> String {
        self.words.render(&self.path)
    }

    fn into_message(self) -> String {
        match self.words {
            Words::Text(text) => text,
            words => words.render(&self.path),
        }
    }

    fn is_skip(&self) -> bool {
        matches!(self.kind, Kind::Conditional | Kind::Global)
            || (self.kind == Kind::Other && (self.words.mentions(&self.path, CONDITIONAL) || self.words.mentions(&self.path, GLOBAL)))
    }

    fn is_negation(&self) -> bool {
        self.kind == Kind::Negation || (self.kind == Kind::Other && self.words.mentions(&self.path, NEGATION))
    }
}

/// Whether `message` contains `prefix`. Messages are short and most hold no anchor text at
/// all, so comparing at each offset is cheaper than preparing a substring searcher on every
/// classification, which happens once per failing array element.
///
/// Every anchor phrase holds a space, which paths (made of keys and indexes) and most values
/// do not, so a text without one is answered by one quick scan.
fn mentions(message: &str, prefix: &str) -> bool {
    let (text, prefix) = (message.as_bytes(), prefix.as_bytes());
    if prefix.contains(&b' ') && !text.contains(&b' ') {
        return false;
    }
    let Some((&first, rest)) = prefix.split_first() else { return true };
    text.iter().enumerate().any(|(i, &b)| b == first && text.get(i + 1..i + 1 + rest.len()) == Some(rest))
}

type Res<'p, T> = Result<(), Error<'p, T>>;

struct Walk<'p> {
    pattern: &'p Pattern,
    /// Kyverno's anchor map: for each conditional, existence and negation key as written,
    /// whether the resource had that key at some map the key was checked against.
    anchors: Vec<(&'p str, AnchorKind, bool)>,
}

impl<'p> Walk<'p> {
    fn keys_are_missing(&self) -> bool {
        self.anchors.iter().any(|&(_, kind, found)| !found && kind != AnchorKind::Negation)
    }

    fn element<T: Tree>(&mut self, resource: T, id: NodeId, path: &mut String, depth: usize) -> Res<'p, T> {
        if depth > palisade_compiler::ir::pattern::MAX_DEPTH {
            return Err(Error::other(path, Words::Fixed("pattern nests too deeply")));
        }
        match self.pattern.node(id) {
            Node::Map { start, len, anchors, wildcard_keys } => {
                if !is_object(&resource) {
                    return Err(Error::other(path, Words::Structure(resource.go_type())));
                }
                let map = resource;
                let entries = self.pattern.entries(*start, *len);
                self.note_anchors(entries, map);
                if *wildcard_keys && is_metadata_map(path) {
                    return self.wildcard_map(map, entries, path, depth);
                }
                let (phase_one, rest) = entries.split_at((*anchors as usize).min(entries.len()));
                for entry in phase_one.iter().chain(rest) {
                    self.entry(map, entry, path, depth)?;
                }
                Ok(())
            }
            Node::Seq { start, len } => {
                if !is_array(&resource) {
                    return Err(Error::other(path, Words::Overlay));
                }
                self.array(resource, self.pattern.items(*start, *len), path, depth)
            }
            scalar_node => {
                let matches = |v: &T| scalar::matches_scalar(v.scalar(), scalar_node);
                let ok = if is_array(&resource) {
                    elements(resource).all(|item| matches(&item))
                } else {
                    matches(&resource)
                };
                if ok {
                    Ok(())
                } else {
                    Err(Error::other(path, Words::Value(resource, scalar_node)))
                }
            }
        }
    }

    fn entry<T: Tree>(&mut self, map: T, entry: &Entry, path: &mut String, depth: usize) -> Res<'p, T> {
        let base = path.len();
        let result = match entry.anchor {
            Some(AnchorKind::Condition) => match map.get(&entry.key) {
                Some(v) => {
                    push_key(path, &entry.key);
                    self.element(v, entry.value, path, depth + 1).map_err(|e| Error {
                        kind: Kind::Conditional,
                        words: Words::Text(format!("{CONDITIONAL}: {}", e.message())),
                        path: e.path,
                    })
                }
                None => {
                    push_key(path, &entry.key);
                    Err(Error {
                        kind: Kind::Conditional,
                        path: path.clone(),
                        words: Words::Fixed("conditional anchor mismatch: conditional anchor key doesn't exist in the resource"),
                    })
                }
            },
            Some(AnchorKind::Global) => match map.get(&entry.key) {
                Some(v) => {
                    push_key(path, &entry.key);
                    self.element(v, entry.value, path, depth + 1).map_err(|e| Error {
                        kind: Kind::Global,
                        words: Words::Text(format!("{GLOBAL}: {}", e.message())),
                        path: e.path,
                    })
                }
                None => Ok(()),
            },
            Some(AnchorKind::Equality) => match map.get(&entry.key) {
                Some(v) => {
                    push_key(path, &entry.key);
                    self.element(v, entry.value, path, depth + 1)
                }
                None => Ok(()),
            },
            Some(AnchorKind::Negation) => {
                if map.get(&entry.key).is_some() {
                    push_key(path, &entry.key);
                    Err(Error { kind: Kind::Negation, path: path.clone(), words: Words::Negation })
                } else {
                    Ok(())
                }
            }
            Some(AnchorKind::Existence) => match map.get(&entry.key) {
                Some(v) => {
                    push_key(path, &entry.key);
                    self.existence(v, entry.value, path, depth)
                }
                None => Ok(()),
            },
            // `+(key)` has no meaning in validate: Kyverno looks the key up as written.
            Some(AnchorKind::AddIfNotPresent) | None => {
                let lookup: &str = if entry.anchor.is_some() { &entry.raw } else { &entry.key };
                let value = map.get(lookup).unwrap_or(map.null());
                if is_star(self.pattern.node(entry.value)) {
                    if matches!(value.scalar(), Scalar::Null) {
                        Err(Error::other(path, Words::Text(format!("{path}/{lookup} not found"))))
                    } else {
                        Ok(())
                    }
                } else {
                    push_key(path, lookup);
                    self.element(value, entry.value, path, depth + 1)
                }
            }
        };
        path.truncate(base);
        result
    }

    fn existence<T: Tree>(&mut self, resource: T, id: NodeId, path: &mut String, depth: usize) -> Res<'p, T> {
        if !is_array(&resource) {
            return Err(Error::other(path, Words::ExistenceResource(resource.go_type())));
        }

        let Node::Seq { start, len } = self.pattern.node(id) else {
            return Err(Error::other(path, Words::ExistencePattern(node_go_type(self.pattern.node(id)))));
        };
        for &pattern_item in self.pattern.items(*start, *len) {
            if !matches!(self.pattern.node(pattern_item), Node::Map { .. }) {
                return Err(Error::other(
                    path,
                    Words::Fixed("invalid pattern type []interface {}: Pattern has to be of type map to compare against items in resource"),
                ));
            }
            let base = path.len();
            let mut found = false;
            for (i, item) in elements(resource).enumerate() {
                push_index(path, i);
                let ok = self.element(item, pattern_item, path, depth + 1).is_ok();
                path.truncate(base);
                if ok {
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(Error::other(path, Words::Existence));
            }
        }
        Ok(())
    }

    /// `array` is the resource array the pattern array is matched against.
    fn array<T: Tree>(&mut self, array: T, pattern_items: &[NodeId], path: &mut String, depth: usize) -> Res<'p, T> {
        let Some(&first) = pattern_items.first() else {
            return Err(Error::other(path, Words::Fixed("pattern Array empty")));
        };
        match self.pattern.node(first) {
            Node::Map { .. } => {
                // The first pattern element applies to every resource element.
                self.each(elements(array).map(|item| (first, item)), path, depth)
            }
            Node::Seq { .. } => {
                // Nested arrays compare position by position.
                if array.len() < pattern_items.len() {
                    return Err(Error::other(
                        "",
                        Words::Text(format!(
                            "validate Array failed, array length mismatch, resource Array len is {} and pattern Array len is {}",
                            array.len(),
                            pattern_items.len()
                        )),
                    ));
                }
                self.each(pattern_items.iter().copied().zip(elements(array)), path, depth)
            }
            // A scalar first element: every resource element must match it.
            _ => self.element(array, first, path, depth + 1),
        }
    }

    /// Matches `(pattern, resource)` pairs at indices 0, 1, ...: a failure stops the walk, and
    /// when every pair was skipped by an anchor the whole array is skipped.
    fn each<T: Tree>(&mut self, pairs: impl Iterator<Item = (NodeId, T)>, path: &mut String, depth: usize) -> Res<'p, T> {
        let mut applied = 0;
        let mut skipped = Vec::new();
        let base = path.len();
        for (i, (p, item)) in pairs.enumerate() {
            push_index(path, i);
            let r = self.element(item, p, path, depth + 1);
            path.truncate(base);
            match r {
                Ok(()) => applied += 1,
                Err(e) if e.is_skip() => skipped.push(e.into_message()),
                Err(e) => return Err(e),
            }
        }
        all_skipped(applied, skipped, path)
    }

    /// Kyverno expands wildcard keys of a pattern map under `metadata.labels` or
    /// `metadata.annotations` into the resource keys they match, then validates the result.
    fn wildcard_map<T: Tree>(&mut self, map: T, entries: &'p [Entry], path: &mut String, depth: usize) -> Res<'p, T> {
        for entry in entries {
            if !entry.key.contains(['*', '?']) {
                self.entry(map, entry, path, depth)?;
                continue;
            }
            let matching: Vec<String> = map.keys().into_iter().filter(|k| palisade_stdlib::wildcard::matches(&entry.key, k)).collect();
            if matching.is_empty() {
                // No key matches: Kyverno keeps the wildcard key, which then fails to resolve
                // like any absent key.
                self.entry(map, entry, path, depth)?;
                continue;
            }
            for k in &matching {
                let concrete = Entry { key: k.as_str().into(), raw: k.as_str().into(), anchor: entry.anchor, value: entry.value };
                self.entry(map, &concrete, path, depth)?;
            }
        }
        Ok(())
    }

    fn note_anchors<T: Tree>(&mut self, entries: &'p [Entry], map: T) {
        for e in entries {
            let Some(kind) = e.anchor else { continue };
            if !matches!(kind, AnchorKind::Condition | AnchorKind::Existence | AnchorKind::Negation) {
                continue;
            }
            let present = map.get(&e.key).is_some();
            match self.anchors.iter_mut().find(|(raw, _, _)| *raw == &*e.raw) {
                Some(slot) => slot.2 |= present,
                None => self.anchors.push((&e.raw, kind, present)),
            }
        }
    }
}

/// When every element of an array was skipped by a conditional anchor, the array as a whole is
/// skipped; Kyverno joins the element errors the way `multierr` does.
fn all_skipped<'p, T>(applied: usize, skipped: Vec<String>, path: &str) -> Res<'p, T> {
    if applied == 0 && !skipped.is_empty() {
        return Err(Error { kind: Kind::Conditional, path: path.to_owned(), words: Words::Text(skipped.join("; ")) });
    }
    Ok(())
}

fn push_key(path: &mut String, key: &str) {
    path.push_str(key);
    path.push('/');
}

fn push_index(path: &mut String, i: usize) {
    use std::fmt::Write;
    let _ = write!(path, "{i}/");
}

fn is_star(node: &Node) -> bool {
    matches!(node, Node::Str(s) if &*s.raw == "*")
}

/// Kyverno expands wildcard keys only in the label and annotation maps of an object's metadata.
fn is_metadata_map(path: &str) -> bool {
    path.ends_with("/metadata/labels/") || path.ends_with("/metadata/annotations/")
}

/// Go's `%T` of an untyped JSON value, as Kyverno's messages print it.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn node_go_type(node: &Node) -> &'static str {
    match node {
        Node::Null => "<nil>",
        Node::Bool(_) => "bool",
        Node::Number(_) => "float64",
        Node::Str(_) => "string",
        Node::Seq { .. } => "[]interface {}",
        Node::Map { .. } => "map[string]interface {}",
    }
}

fn scalar_text(node: &Node) -> String {
    match node {
        Node::Null => "<nil>".into(),
        Node::Bool(b) => b.to_string(),
        Node::Number(f) => gofmt::float_g(*f),
        Node::Str(s) => s.raw.to_string(),
        Node::Seq { .. } | Node::Map { .. } => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;

    /// Reading an error's parts for an anchor phrase gives what searching its written text
    /// gives, with the phrases inside, across and at the edges of every part.
    #[test]
    fn mentions_by_parts_agrees_with_the_text() {
        let phrases = [CONDITIONAL, GLOBAL, NEGATION];
        let mut texts: Vec<String> = vec![String::new(), "x".into(), "conditional".into(), "anchor mismatch".into(), "/a b/".into()];
        for p in phrases {
            let (head, tail) = p.split_at(p.len() / 2);
            texts.extend([p.to_owned(), format!("/{p}/"), head.to_owned(), tail.to_owned(), format!(" {head}"), format!("{tail}. ")]);
        }
        let mut values: Vec<Value> = vec![json!(null), json!(true), json!(1.5), json!(-3), json!({"a": "conditional anchor", "b": "mismatch"})];
        for t in &texts {
            values.push(json!(t));
            values.push(json!([t, "x"]));
            values.push(json!({ t.as_str(): 1 }));
        }
        let patterns: Vec<Pattern> = texts.iter().map(|t| Pattern::lower(&json!(t)).unwrap()).chain([Pattern::lower(&json!(2)).unwrap()]).collect();
        let mut checked = 0;
        for path in &texts {
            let mut words: Vec<Words<'_, &Value>> = vec![
                Words::Fixed("pattern Array empty"),
                Words::Structure("string"),
                Words::Overlay,
                Words::Negation,
                Words::Existence,
                Words::ExistenceResource("<nil>"),
                Words::ExistencePattern("bool"),
            ];
            words.extend(texts.iter().map(|t| Words::Text(t.clone())));
            for v in &values {
                for p in &patterns {
                    words.push(Words::Value(v, p.node(p.root())));
                }
            }
            for w in &words {
                for phrase in phrases {
                    assert_eq!(w.mentions(path, phrase), mentions(&w.render(path), phrase), "{w:?} at {path:?} for {phrase:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
    }
}
