//! Spanned YAML: every node of a policy file knows its file and byte range.
//!
//! Scalars keep their source text and style, so later stages can tell `"true"` from `true` and
//! point inside a string (at a JMESPath column, say).
//!
//! # One YAML behaviour everywhere
//! Policies, resources and values files all go through [`parse`] (and [`to_json`] when a JSON
//! value is wanted, see [`parse_json_documents`]). Kubernetes reads YAML with sigs.k8s.io/yaml,
//! which is go-yaml v2 underneath, so a second parser with other resolution rules (YAML 1.2 in
//! `serde_yaml_ng`, say) would make `on: yes` mean different things in a policy and in the
//! resource it is tested against. Plain scalars therefore resolve as go-yaml v2 does
//! ([`resolve_plain`]):
//! - null: `~`, `null`, `Null`, `NULL` and the empty scalar;
//! - booleans: `true/false`, `yes/no`, `on/off`, `y/n`, each in lower, capitalised and upper case;
//! - integers: Go's `strconv.ParseInt(s, 0, 64)` after removing `_`, so `0x1F`, `0o17`, `017`
//!   (a leading zero is octal) and `0b101` are integers; values past `i64` become floats;
//! - floats: `1.5`, `.5`, `1e3`, `-2.5E-3`, `.inf`/`-.inf`/`.nan` (and their case forms);
//! - everything else, timestamps included, is a string.
//!
//! Quoted and block scalars are always strings. Anchors and aliases work (an alias is a copy of
//! the anchored node); merge keys (`<<: *base`) are applied while the tree is built, explicit
//! keys winning over merged ones. Tags other than the core ones are ignored.
//!
//! # Bounded work
//! Nesting deeper than [`MAX_DEPTH`] and alias expansion beyond [`MAX_NODES`] nodes per file are
//! reported as errors instead of being built, so a hostile file cannot exhaust the stack or
//! memory. A syntax error ends only the document it occurs in: the file is cut into documents at
//! `---` lines first, and each document is parsed on its own.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle as YamlStyle, ScanError};

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};

/// Maximum nesting of collections in one document.
pub const MAX_DEPTH: usize = 200;
/// Maximum number of nodes built for one file, aliases included.
pub const MAX_NODES: usize = 2_000_000;

/// Diagnostic codes of this stage (the full list is in `check::codes`).
pub mod codes {
    pub const SYNTAX: &str = "P0001";
    pub const LIMIT: &str = "P0002";
    pub const ALIAS: &str = "P0003";
}

/// One YAML node with its span.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string scalar. `style` says how it was written; the span covers the quotes, if any,
    /// while `content_offset` is where the string's first character starts in the file (for a
    /// plain or single-line quoted scalar this makes columns inside the string exact).
    Str(StrScalar),
    Seq(Vec<Node>),
    /// Keys in document order. Duplicate keys are kept here and reported by the checker.
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct StrScalar {
    pub text: String,
    pub style: ScalarStyle,
    /// Byte offset in the file of the first character of the string's content, when the string
    /// maps one-to-one onto the source (plain, or quoted without escapes or line folding).
    pub content_offset: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// One YAML document of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub root: Node,
    /// The span of the whole document text, from its `---` (if any) to the next document.
    pub span: Span,
    /// A syntax error cut the document short: `root` holds only what came before the error.
    pub truncated: bool,
}

impl Node {
    pub fn new(value: Value, span: Span) -> Node {
        Node { value, span }
    }

    /// The value under `key` if this is a map (the first one, if the key is repeated).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value under `key` if this is a map.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_key().as_deref() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(&s.text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The text of this node used as a mapping key, as sigs.k8s.io/yaml turns keys into JSON
    /// object keys: strings as they are, other scalars formatted. Collections have no key text.
    pub fn as_key(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match &self.value {
            Value::Str(s) => Some(Cow::Borrowed(&s.text)),
            Value::Null => Some(Cow::Borrowed("null")),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Float(f) => Some(Cow::Owned(format_float(*f))),
            Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A short name of the node's type for messages ("a string", "a list", ...).
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }

    /// The span of bytes `range` of this string's content, exact when the string maps one-to-one
    /// onto the source and the whole node's span otherwise.
    pub fn str_span(&self, range: std::ops::Range<usize>) -> Span {
        match &self.value {
            Value::Str(StrScalar {
                content_offset: Some(off),
                ..
            }) => {
                let start = (*off as usize).saturating_add(range.start);
                let end = (*off as usize).saturating_add(range.end);
                Span::new(self.span.file, start, end)
            }
            _ => self.span,
        }
    }
}

/// How a plain (unquoted) scalar resolves. YAML 1.1 as in Kubernetes (go-yaml v2); see the
/// module documentation for the rules.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => {
            return Value::Bool(true);
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => {
            return Value::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes().first().copied().unwrap_or(b'x');
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Value::Str(StrScalar::plain(text));
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    if let Some(i) = parse_go_int(&plain) {
        return match i64::try_from(i) {
            Ok(i) => Value::Int(i),
            // go-yaml falls back to uint64 and beyond that to float; JSON numbers hold both, but
            // a float keeps this type small and such values do not occur in policies.
            Err(_) => Value::Float(i as f64),
        };
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(StrScalar::plain(text))
}

/// `strconv.ParseInt(s, 0, 64)` (with the `ParseUint` fallback) as go-yaml v2 calls it: an
/// optional sign, then `0x`/`0o`/`0b` prefixes or a leading `0` for octal.
fn parse_go_int(s: &str) -> Option<i128> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..)?),
        Some(b'+') => (false, s.get(1..)?),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower.get(1..)?)
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    let value = if neg {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    // Go's ParseInt rejects below i64::MIN; ParseUint accepts up to u64::MAX for non-negatives.
    (value >= i128::from(i64::MIN)).then_some(value)
}

/// go-yaml v2's float shape: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

impl StrScalar {
    fn plain(text: &str) -> StrScalar {
        StrScalar {
            text: text.to_owned(),
            style: ScalarStyle::Plain,
            content_offset: None,
        }
    }
}

/// Formats a float as sigs.k8s.io/yaml writes it into JSON (Go's `'g'`-like shortest form).
fn format_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        }
    } else {
        f.to_string()
    }
}

/// The JSON value of a node, as Kubernetes would see the document (sigs.k8s.io/yaml).
/// Map keys become strings ([`Node::as_key`]); a collection used as a key is dropped; when a
/// key repeats, the last value wins. Infinite and NaN floats, which JSON cannot hold, become
/// null.
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.text.clone()),
        Value::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => {
            let mut map = serde_json::Map::with_capacity(entries.len());
            for (k, v) in entries {
                if let Some(key) = k.as_key() {
                    map.insert(key.into_owned(), to_json(v));
                }
            }
            J::Object(map)
        }
    }
}

/// Parses plain YAML (resources, values files) into JSON values with the same rules as policies.
/// Empty documents are dropped. On a syntax error the message says where it is.
pub fn parse_json_documents(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut sources = crate::source::SourceMap::new();
    let file = sources.add("<input>", text);
    let (docs, diags) = parse(file, text);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        let at = sources.resolve(d.span).map(|(s, _)| s);
        return Err(match at {
            Some(lc) => format!("line {} column {}: {}", lc.line, lc.column, d.message),
            None => d.message.clone(),
        });
    }
    Ok(docs
        .iter()
        .filter(|d| !d.root.is_null())
        .map(|d| to_json(&d.root))
        .collect())
}

/// Parses every document of a file. Never fails: syntax errors become diagnostics, and the
/// documents before and after the broken one are still returned.
pub fn parse(file: FileId, text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    let mut builder = Builder {
        file,
        text,
        docs: Vec::new(),
        diags: Vec::new(),
        nodes: 0,
    };
    for (start, end) in split_documents(text) {
        if let Some(chunk) = text.get(start..end) {
            builder.parse_chunk(start, chunk);
        }
    }
    (builder.docs, builder.diags)
}

/// Byte ranges of the file cut before every line that starts with the `---` marker. A marker
/// at column 0 cannot occur inside a document, so each range can be parsed on its own (the
/// resource loader parses them in parallel).
pub fn split_documents(text: &str) -> Vec<(usize, usize)> {
    let mut cuts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let is_marker = line
            .strip_prefix("---")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\n', '\r']));
        if is_marker && offset > 0 {
            cuts.push(offset);
        }
        offset += line.len();
    }
    cuts.push(text.len());
    cuts.windows(2)
        .filter_map(|w| Some((*w.first()?, *w.get(1)?)))
        .collect()
}

struct Builder<'a> {
    file: FileId,
    text: &'a str,
    docs: Vec<Document>,
    diags: Vec<Diagnostic>,
    /// Nodes built so far in this file, to bound alias expansion.
    nodes: usize,
}

/// A collection being built.
enum Open {
    Seq {
        start: u32,
        items: Vec<Node>,
        anchor: usize,
    },
    Map {
        start: u32,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        anchor: usize,
    },
}

/// Converts saphyr's character indices (relative to a chunk) into byte offsets in the file.
struct Offsets {
    base: usize,
    /// Byte offset of every character of the chunk, plus the end; empty for ASCII chunks, where
    /// character and byte indices agree.
    table: Vec<u32>,
    len: usize,
}

impl Offsets {
    fn new(base: usize, chunk: &str) -> Offsets {
        let table = if chunk.is_ascii() {
            Vec::new()
        } else {
            let mut t: Vec<u32> = chunk.char_indices().map(|(i, _)| i as u32).collect();
            t.push(chunk.len() as u32);
            t
        };
        Offsets {
            base,
            table,
            len: chunk.len(),
        }
    }

    fn byte(&self, char_index: usize) -> u32 {
        let within = if self.table.is_empty() {
            char_index.min(self.len)
        } else {
            self.table.get(char_index).map_or(self.len, |&b| b as usize)
        };
        u32::try_from(self.base + within).unwrap_or(u32::MAX)
    }
}

impl Builder<'_> {
    fn span(&self, start: u32, end: u32) -> Span {
        Span::new(self.file, start as usize, end as usize)
    }

    fn parse_chunk(&mut self, base: usize, chunk: &str) {
        let offsets = Offsets::new(base, chunk);
        let mut stack: Vec<Open> = Vec::new();
        // Anchored nodes with their size and height, to bound what aliases can build.
        let mut anchors: HashMap<usize, (Node, usize, usize)> = HashMap::new();
        let mut doc_start: Option<u32> = None;
        let mut root: Option<Node> = None;
        for event in Parser::new_from_str(chunk) {
            let (event, ev_span) = match event {
                Ok(e) => e,
                Err(err) => {
                    self.syntax_error(&offsets, &err);
                    // Whatever was complete before the error is kept, so that a typo near the
                    // end of a policy still lets the checker look at the rest.
                    let partial = close_all(stack, self.file);
                    if let Some(node) = root.take().or(partial) {
                        let start = doc_start.unwrap_or(node.span.start);
                        self.push_truncated_doc(node, start, offsets.byte(chunk.chars().count()));
                    }
                    return;
                }
            };
            let s = offsets.byte(ev_span.start.index());
            let e = offsets.byte(ev_span.end.index());
            let node = match event {
                Event::DocumentStart(_) => {
                    doc_start = Some(s);
                    continue;
                }
                Event::DocumentEnd => {
                    let start = doc_start.take().unwrap_or(s);
                    let node = root
                        .take()
                        .unwrap_or_else(|| Node::new(Value::Null, self.span(start, start)));
                    self.push_doc(node, start, e.max(start));
                    continue;
                }
                Event::StreamStart | Event::StreamEnd | Event::Nothing => continue,
                Event::Alias(id) => match anchors.get(&id) {
                    Some((target, size, height)) => {
                        let size = *size;
                        if stack.len() + height > MAX_DEPTH {
                            self.diags.push(Diagnostic::error(
                                codes::LIMIT,
                                self.span(s, e),
                                format!("this alias would nest the document more than {MAX_DEPTH} levels deep"),
                            ));
                            Node::new(Value::Null, self.span(s, e))
                        } else if self.nodes.saturating_add(size) > MAX_NODES {
                            self.diags.push(Diagnostic::error(
                                codes::LIMIT,
                                self.span(s, e),
                                format!("this alias would expand the file past {MAX_NODES} nodes"),
                            )
                            .with_note("aliases copy the anchored node; nested aliases grow exponentially. Write the values out instead."));
                            Node::new(Value::Null, self.span(s, e))
                        } else {
                            self.nodes += size;
                            Node {
                                value: target.value.clone(),
                                span: self.span(s, e),
                            }
                        }
                    }
                    None => {
                        self.diags.push(Diagnostic::error(
                            codes::ALIAS,
                            self.span(s, e),
                            "this alias refers to an anchor that is not defined before it",
                        ));
                        Node::new(Value::Null, self.span(s, e))
                    }
                },
                Event::Scalar(text, style, anchor, tag) => {
                    self.nodes += 1;
                    let s = skip_properties(self.text, s, e);
                    let node = self.scalar(&text, style, tag.as_deref(), s, e);
                    if anchor > 0 {
                        anchors.insert(anchor, (node.clone(), 1, 0));
                    }
                    node
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    self.nodes += 1;
                    if stack.len() >= MAX_DEPTH {
                        self.diags.push(Diagnostic::error(
                            codes::LIMIT,
                            self.span(s, e),
                            format!(
                                "this document nests collections more than {MAX_DEPTH} levels deep"
                            ),
                        ));
                        let partial = close_all(std::mem::take(&mut stack), self.file);
                        if let Some(node) = partial {
                            self.push_doc(
                                node,
                                doc_start.unwrap_or(0),
                                offsets.byte(chunk.chars().count()),
                            );
                        }
                        return;
                    }
                    let start = skip_properties(self.text, s, e.max(s + 1));
                    stack.push(match event {
                        Event::SequenceStart(..) => Open::Seq {
                            start,
                            items: Vec::new(),
                            anchor,
                        },
                        _ => Open::Map {
                            start,
                            entries: Vec::new(),
                            key: None,
                            anchor,
                        },
                    });
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let Some(open) = stack.pop() else { continue };
                    // Flow collections end at their closing bracket; block collections at the
                    // end of their last item (saphyr puts the end event on the next token).
                    let close = (e > s).then_some(e);
                    let (node, anchor) = finish(open, close, self.file, &mut self.diags);
                    if anchor > 0 {
                        let (size, height) = measure(&node);
                        anchors.insert(anchor, (node.clone(), size, height));
                    }
                    node
                }
            };
            match stack.last_mut() {
                Some(Open::Seq { items, .. }) => items.push(node),
                Some(Open::Map { entries, key, .. }) => match key.take() {
                    Some(k) => entries.push((k, node)),
                    None => *key = Some(node),
                },
                None => root = Some(node),
            }
        }
        if let Some(node) = root {
            let start = doc_start.unwrap_or(node.span.start);
            self.push_doc(node, start, offsets.byte(chunk.chars().count()));
        }
    }

    fn push_doc(&mut self, root: Node, start: u32, end: u32) {
        let span = self.span(start, end.max(start));
        self.docs.push(Document {
            root,
            span,
            truncated: false,
        });
    }

    fn push_truncated_doc(&mut self, root: Node, start: u32, end: u32) {
        let span = self.span(start, end.max(start));
        self.docs.push(Document {
            root,
            span,
            truncated: true,
        });
    }

    fn syntax_error(&mut self, offsets: &Offsets, err: &ScanError) {
        let at = offsets.byte(err.marker().index());
        // Point at one character when there is one, so the caret is visible.
        let end = self
            .text
            .get(at as usize..)
            .and_then(|r| r.chars().next())
            .map_or(at, |c| {
                if c == '\n' {
                    at
                } else {
                    at + c.len_utf8() as u32
                }
            });
        let info = err.info();
        self.diags.push(
            Diagnostic::error(
                codes::SYNTAX,
                self.span(at, end),
                format!("YAML syntax error: {info}"),
            )
            .with_note("the rest of this document is ignored until the error is fixed"),
        );
    }

    fn scalar(
        &self,
        text: &str,
        style: YamlStyle,
        tag: Option<&saphyr_parser::Tag>,
        start: u32,
        end: u32,
    ) -> Node {
        let span = self.span(start, end);
        let style = match style {
            YamlStyle::Plain => ScalarStyle::Plain,
            YamlStyle::SingleQuoted => ScalarStyle::SingleQuoted,
            YamlStyle::DoubleQuoted => ScalarStyle::DoubleQuoted,
            YamlStyle::Literal => ScalarStyle::Literal,
            YamlStyle::Folded => ScalarStyle::Folded,
        };
        let forced_str = tag.is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
        if style == ScalarStyle::Plain && !forced_str {
            let value = resolve_plain(text);
            if !matches!(value, Value::Str(_)) {
                return Node::new(value, span);
            }
        }
        let content = match style {
            ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => start + 1,
            _ => start,
        };
        let maps_one_to_one = self
            .text
            .get(content as usize..)
            .and_then(|rest| rest.get(..text.len()))
            .is_some_and(|src| src == text);
        Node::new(
            Value::Str(StrScalar {
                text: text.to_owned(),
                style,
                content_offset: maps_one_to_one.then_some(content),
            }),
            span,
        )
    }
}

/// Skips node properties (`&anchor`, `!tag`) that saphyr includes at the start of a node span.
fn skip_properties(text: &str, start: u32, end: u32) -> u32 {
    let mut at = start as usize;
    loop {
        let rest = text.get(at..end as usize).unwrap_or("");
        if !rest.starts_with(['&', '!']) {
            return at as u32;
        }
        let word = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let after = rest.get(word..).unwrap_or("");
        let ws = after.len() - after.trim_start().len();
        if word + ws == 0 || at + word + ws >= end as usize {
            return at as u32;
        }
        at += word + ws;
    }
}

/// Builds the node of a finished collection and applies merge keys.
fn finish(
    open: Open,
    close: Option<u32>,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
) -> (Node, usize) {
    match open {
        Open::Seq {
            start,
            items,
            anchor,
        } => {
            let end = close
                .or_else(|| items.last().map(|n| n.span.end))
                .unwrap_or(start);
            (
                Node::new(
                    Value::Seq(items),
                    Span::new(file, start as usize, end as usize),
                ),
                anchor,
            )
        }
        Open::Map {
            start,
            entries,
            key,
            anchor,
        } => {
            let mut entries = entries;
            // A key without a value (`key:` followed by the end of the map) has a null value.
            if let Some(k) = key {
                let span = Span::new(file, k.span.end as usize, k.span.end as usize);
                entries.push((k, Node::new(Value::Null, span)));
            }
            let end = close
                .or_else(|| entries.last().map(|(k, v)| v.span.end.max(k.span.end)))
                .unwrap_or(start);
            let entries = apply_merge_keys(entries, diags);
            (
                Node::new(
                    Value::Map(entries),
                    Span::new(file, start as usize, end as usize),
                ),
                anchor,
            )
        }
    }
}

/// Replaces `<<: map` and `<<: [map, ...]` entries by the merged maps' entries that the mapping
/// does not define itself; earlier maps in a merge list win over later ones (YAML merge type).
fn apply_merge_keys(entries: Vec<(Node, Node)>, diags: &mut Vec<Diagnostic>) -> Vec<(Node, Node)> {
    let is_merge = |k: &Node| matches!(&k.value, Value::Str(s) if s.text == "<<" && s.style == ScalarStyle::Plain);
    if !entries.iter().any(|(k, _)| is_merge(k)) {
        return entries;
    }
    let mut own: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (k, v) in entries {
        if !is_merge(&k) {
            own.push((k, v));
            continue;
        }
        let sources: Vec<Node> = match v.value {
            Value::Map(_) => vec![v],
            Value::Seq(items) => items,
            _ => {
                diags.push(Diagnostic::error(
                    codes::ALIAS,
                    v.span,
                    format!(
                        "a merge key `<<` needs a map or a list of maps, not {}",
                        v.type_name()
                    ),
                ));
                continue;
            }
        };
        for source in sources {
            match source.value {
                Value::Map(src) => merged.extend(src),
                _ => diags.push(Diagnostic::error(
                    codes::ALIAS,
                    source.span,
                    format!(
                        "a merge key `<<` can only merge maps, not {}",
                        source.type_name()
                    ),
                )),
            }
        }
    }
    let mut seen: std::collections::HashSet<String> = own
        .iter()
        .filter_map(|(k, _)| k.as_key().map(|c| c.into_owned()))
        .collect();
    for (k, v) in merged {
        let Some(key) = k.as_key().map(|c| c.into_owned()) else {
            continue;
        };
        if seen.insert(key) {
            own.push((k, v));
        }
    }
    own
}

/// Closes every open collection after an error, keeping what was built; returns the root.
fn close_all(mut stack: Vec<Open>, file: FileId) -> Option<Node> {
    let mut ignored = Vec::new();
    let mut node: Option<Node> = None;
    while let Some(mut open) = stack.pop() {
        if let Some(child) = node.take() {
            match &mut open {
                Open::Seq { items, .. } => items.push(child),
                Open::Map { entries, key, .. } => match key.take() {
                    Some(k) => entries.push((k, child)),
                    None => *key = Some(child),
                },
            }
        }
        node = Some(finish(open, None, file, &mut ignored).0);
    }
    node
}

/// Number of nodes and height of a tree. Recursion is bounded: every tree built here is at most
/// [`MAX_DEPTH`] levels deep.
fn measure(node: &Node) -> (usize, usize) {
    let children: Box<dyn Iterator<Item = &Node>> = match &node.value {
        Value::Seq(items) => Box::new(items.iter()),
        Value::Map(entries) => Box::new(entries.iter().flat_map(|(k, v)| [k, v])),
        _ => return (1, 0),
    };
    children.fold((1, 1), |(size, height), child| {
        let (s, h) = measure(child);
        (size + s, height.max(h + 1))
    })
}

pub mod plain;

#[cfg(test)]
mod tests;
