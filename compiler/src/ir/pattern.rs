//! Pattern IR: a Kyverno overlay pattern (validate `pattern`, `anyPattern` items, foreach
//! patterns) as a flat arena.
//!
//! Lowering works from the pattern's JSON value, because that is what Kyverno matches after
//! variable substitution: a pattern without `{{ }}` variables is lowered once at compile time; a
//! pattern with variables is substituted per request and lowered then (the slow path).
//!
//! Map entries are stored in the order Kyverno evaluates them, so the executor walks them in
//! sequence: first the anchors (conditional, existence, equality, negation) sorted by their
//! written key, then global anchors and keys whose values hold anchors, then every other key.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use palisade_stdlib::duration::Duration;
use palisade_stdlib::quantity::Quantity;
use palisade_stdlib::wildcard::Wildcard;

use crate::pattern::{AnchorKind, CompareOp, ConditionKind, parse_key, parse_value_expr};

/// Index of a node in a [`Pattern`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeId(u32);

impl NodeId {
    /// The id as a plain index, for code that stores ids outside Rust (the JIT's constants).
    pub fn index(self) -> u32 {
        self.0
    }

    /// An id from [`NodeId::index`]; a foreign index reads as a null node.
    pub fn from_index(index: u32) -> NodeId {
        NodeId(index)
    }
}

/// One pattern node. Numbers are `f64` because Kyverno decodes patterns as untyped JSON, where
/// every number is a float64; an integral resource value still matches an integral pattern.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Node {
    Null,
    Bool(bool),
    Number(f64),
    Str(Box<StrPattern>),
    /// Items are `items[start..start + len]`.
    Seq { start: u32, len: u32 },
    /// Entries are `entries[start..start + len]`, in evaluation order; the first `anchors` of
    /// them are the phase-one anchors. `wildcard_keys` marks a map with `*`/`?` in a key, which
    /// Kyverno expands against the resource's keys when the map sits under `metadata.labels` or
    /// `metadata.annotations`.
    Map { start: u32, len: u32, anchors: u32, wildcard_keys: bool },
}

/// A string pattern: the text as written, and its operator expression with every operand
/// pre-parsed. It matches a value equal to `raw`, or one that satisfies all conditions of any
/// alternative.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrPattern {
    pub raw: Box<str>,
    pub alternatives: Vec<Vec<Cond>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Cond {
    Compare { op: CompareOp, operand: Const },
    /// `low-high`: `>= low` and `<= high`.
    InRange { low: Const, high: Const },
    /// `low!-high`: `< low` or `> high`.
    NotInRange { low: Const, high: Const },
}

/// An operand, parsed every way Kyverno may compare it: as a Go duration, as a Kubernetes
/// quantity, and as a wildcard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Const {
    pub duration: Option<Duration>,
    pub quantity: Option<Quantity>,
    pub wildcard: Wildcard,
}

/// A constant is stored (in bundles) as its text and re-parsed on load: parsing is a pure
/// function of the text, and this keeps the stdlib's number types out of the bundle format.
impl From<String> for Const {
    fn from(text: String) -> Const {
        Const::new(&text)
    }
}

impl From<Const> for String {
    fn from(c: Const) -> String {
        c.text().to_owned()
    }
}

impl Const {
    pub fn new(text: &str) -> Const {
        Const { duration: Duration::parse(text).ok(), quantity: Quantity::parse(text).ok(), wildcard: Wildcard::new(text) }
    }

    pub fn text(&self) -> &str {
        self.wildcard.pattern()
    }
}

impl StrPattern {
    pub fn new(raw: &str) -> StrPattern {
        let expr = parse_value_expr(raw);
        let alternatives = expr
            .alternatives
            .iter()
            .map(|alt| {
                alt.conditions
                    .iter()
                    .map(|c| match &c.kind {
                        ConditionKind::Compare { op, operand } => {
                            Cond::Compare { op: *op, operand: Const::new(expr.text(operand.span)) }
                        }
                        ConditionKind::InRange { low, high } => {
                            Cond::InRange { low: Const::new(expr.text(low.span)), high: Const::new(expr.text(high.span)) }
                        }
                        ConditionKind::NotInRange { low, high } => Cond::NotInRange {
                            low: Const::new(expr.text(low.span)),
                            high: Const::new(expr.text(high.span)),
                        },
                    })
                    .collect()
            })
            .collect();
        StrPattern { raw: raw.into(), alternatives }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The key with its anchor removed: what is looked up in the resource.
    pub key: Box<str>,
    /// The key as written, e.g. `=(image)`.
    pub raw: Box<str>,
    pub anchor: Option<AnchorKind>,
    pub value: NodeId,
}

/// A lowered pattern. Immutable and cheap to share.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    nodes: Vec<Node>,
    entries: Vec<Entry>,
    items: Vec<NodeId>,
    root: Option<NodeId>,
}

/// How deep a pattern may nest. Real policies stay under 20 levels; the bound keeps lowering and
/// matching safe from hostile input.
pub const MAX_DEPTH: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LowerError(pub String);

impl std::fmt::Display for LowerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Pattern {
    /// Lowers a pattern from its JSON value.
    pub fn lower(value: &Value) -> Result<Pattern, LowerError> {
        let mut p = Pattern::default();
        let root = p.lower_node(value, 0)?;
        p.root = Some(root);
        Ok(p)
    }

    pub fn root(&self) -> NodeId {
        self.root.unwrap_or(NodeId(0))
    }

    /// The node behind an id. Ids come from this pattern, so a miss is a bug; it reads as null
    /// rather than panicking.
    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id.0 as usize).unwrap_or(&Node::Null)
    }

    pub fn items(&self, start: u32, len: u32) -> &[NodeId] {
        self.items.get(start as usize..(start + len) as usize).unwrap_or(&[])
    }

    pub fn entries(&self, start: u32, len: u32) -> &[Entry] {
        self.entries.get(start as usize..(start + len) as usize).unwrap_or(&[])
    }

    /// Whether the subtree at `id` holds an anchor anywhere (Kyverno's `hasNestedAnchors`).
    pub fn has_nested_anchors(&self, id: NodeId) -> bool {
        match self.node(id) {
            Node::Map { start, len, .. } => self
                .entries(*start, *len)
                .iter()
                .any(|e| e.anchor.is_some_and(AnchorKind::is_validate_anchor) || self.has_nested_anchors(e.value)),
            Node::Seq { start, len } => self.items(*start, *len).iter().any(|&i| self.has_nested_anchors(i)),
            _ => false,
        }
    }

    /// Checks a pattern that did not come from [`Pattern::lower`] (one decoded from a bundle):
    /// every id in range, and every child id below its parent's, as lowering produces them. The
    /// second rule makes the node graph acyclic, so walking it always ends.
    pub fn validate(&self) -> Result<(), String> {
        let count = self.nodes.len();
        let root = self.root.ok_or("pattern has no root")?;
        if root.0 as usize >= count {
            return Err(format!("pattern root {} is out of range ({count} nodes)", root.0));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let children: Vec<NodeId> = match node {
                Node::Seq { start, len } => {
                    let end = (*start as usize).checked_add(*len as usize).filter(|&e| e <= self.items.len());
                    end.ok_or(format!("pattern node {i} has items out of range"))?;
                    self.items(*start, *len).to_vec()
                }
                Node::Map { start, len, anchors, .. } => {
                    let end = (*start as usize).checked_add(*len as usize).filter(|&e| e <= self.entries.len());
                    end.ok_or(format!("pattern node {i} has entries out of range"))?;
                    if anchors > len {
                        return Err(format!("pattern node {i} has more anchors than entries"));
                    }
                    self.entries(*start, *len).iter().map(|e| e.value).collect()
                }
                _ => Vec::new(),
            };
            if let Some(bad) = children.iter().find(|c| c.0 as usize >= i) {
                return Err(format!("pattern node {i} refers to node {} that does not precede it", bad.0));
            }
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> NodeId {
        let id = NodeId(u32::try_from(self.nodes.len()).unwrap_or(u32::MAX));
        self.nodes.push(node);
        id
    }

    fn lower_node(&mut self, value: &Value, depth: usize) -> Result<NodeId, LowerError> {
        if depth > MAX_DEPTH {
            return Err(LowerError(format!("pattern nests deeper than {MAX_DEPTH} levels")));
        }
        let node = match value {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => {
                Node::Str(Box::new(StrPattern::new(s)))
            }
            Value::Array(items) => {
                let ids = items.iter().map(|v| self.lower_node(v, depth + 1)).collect::<Result<Vec<_>, _>>()?;
                let start = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
                self.items.extend(ids);
                Node::Seq { start, len: u32::try_from(items.len()).unwrap_or(u32::MAX) }
            }
            Value::Object(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (raw, v) in map {
                    let key = parse_key(raw);
                    let value = self.lower_node(v, depth + 1)?;
                    entries.push(Entry { key: key.name.into(), raw: raw.as_str().into(), anchor: key.anchor, value });
                }
                let wildcard_keys = entries.iter().any(|e| e.key.contains(['*', '?']));
                self.order_entries(&mut entries);
                let anchors = entries.iter().filter(|e| e.anchor.is_some_and(AnchorKind::is_phase_one)).count();
                let start = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
                let len = u32::try_from(entries.len()).unwrap_or(u32::MAX);
                self.entries.extend(entries);
                Node::Map { start, len, anchors: u32::try_from(anchors).unwrap_or(u32::MAX), wildcard_keys }
            }
        };
        Ok(self.push(node))
    }

    /// Orders map entries as Kyverno evaluates them. Kyverno walks Go maps, whose order is
    /// random within each group; sorting by the written key makes the order deterministic.
    fn order_entries(&self, entries: &mut [Entry]) {
        entries.sort_by_cached_key(|e| {
            let group = match e.anchor {
                Some(a) if a.is_phase_one() => 0,
                Some(AnchorKind::Global) => 1,
                _ if self.has_nested_anchors(e.value) => 1,
                _ => 2,
            };
            (group, e.raw.clone())
        });
    }
}

impl AnchorKind {
    /// Anchors that Kyverno's validate evaluates before all other keys of a map.
    pub fn is_phase_one(self) -> bool {
        matches!(self, AnchorKind::Condition | AnchorKind::Existence | AnchorKind::Equality | AnchorKind::Negation)
    }

    /// Anchors that count for Kyverno's `hasNestedAnchors` (every validate anchor, incl. global).
    pub fn is_validate_anchor(self) -> bool {
        self.is_phase_one() || self == AnchorKind::Global
    }
}
