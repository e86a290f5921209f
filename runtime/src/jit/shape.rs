//! The patterns of one JIT batch as a hash-consed graph of shapes, and the plan of which shapes
//! become functions of their own.
//!
//! Policy sets repeat sub-patterns a lot: autogen copies a Pod rule's pattern under
//! `spec.template.` and `spec.jobTemplate.spec.template.`, and Pod Security patterns repeat one
//! container pattern for `containers`, `initContainers` and `ephemeralContainers`. Interning
//! every sub-pattern by structure (keys as interned ids, scalar constants as ids into one
//! table shared by the batch) turns those copies into one shape. A shape that several places
//! use and that is not tiny is compiled once, as its own function, and called; the rest is
//! inlined into its caller. Code generation time is what a server pays at start and on every
//! reload, and it grows with the amount of code, so this sharing is the main lever on it.

use std::collections::HashMap;

use palisade_compiler::ir::pattern::{Node, NodeId, Pattern};
use palisade_compiler::pattern::AnchorKind;

use crate::doc::KeyTable;

/// Below this inlined size (in shapes, a call counting as one), a shared shape is still inlined
/// at each use: a call costs more than the little code it would save. On the pod-security +
/// best-practices set, 4 gave 12k Cranelift instructions against 17k at 6 and 39k without
/// sharing, and code generation time followed; the matchers ran as fast.
pub(super) const MIN_OUTLINED_SIZE: u32 = 4;

pub(super) type ShapeId = u32;

/// One pattern node, its children replaced by shape ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Shape {
    Map(Box<[ShapeEntry]>),
    Seq(Box<[ShapeId]>),
    /// A boolean constant: compared inline, with the constant's id for the helper's slow path.
    Bool { value: bool, konst: u32 },
    /// Any other scalar: an id into the batch's constant table, matched by the helper.
    Scalar(u32),
}

/// A map entry: the interned key it looks up and what it does with the value found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct ShapeEntry {
    pub key: u32,
    pub op: EntryOp,
}

/// What an entry does, one variant per decision of the interpreter's `entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum EntryOp {
    /// A plain key (or `+(k)`): the value (null when absent) must match.
    Plain(ShapeId),
    /// A plain key with the pattern `"*"`: present and not null.
    Star,
    /// `(k)`: absent is a skip; any mismatch is a skip.
    Condition(ShapeId),
    /// `<(k)`: absent passes; any mismatch is a skip.
    Global(ShapeId),
    /// `=(k)`: absent passes; present must match.
    Equality(ShapeId),
    /// `X(k)`: must be absent; the value is never looked at.
    Negation,
    /// `^(k)`: absent passes; present must be a list with an element matching each map.
    Existence(ShapeId),
}

impl EntryOp {
    pub fn value(self) -> Option<ShapeId> {
        match self {
            EntryOp::Plain(v) | EntryOp::Condition(v) | EntryOp::Global(v) | EntryOp::Equality(v) | EntryOp::Existence(v) => Some(v),
            EntryOp::Star | EntryOp::Negation => None,
        }
    }
}

/// The shapes and constants of one batch.
#[derive(Debug, Default)]
pub(super) struct Shapes {
    shapes: Vec<Shape>,
    ids: HashMap<Shape, ShapeId>,
    consts: Vec<Node>,
    /// Constants by their `Debug` text, which covers every field (the parsed operands too), so
    /// two constants share an id only when they match alike.
    const_ids: HashMap<String, u32>,
}

impl Shapes {
    pub fn shape(&self, id: ShapeId) -> Option<&Shape> {
        self.shapes.get(id as usize)
    }

    pub fn into_consts(self) -> Vec<Node> {
        self.consts
    }

    /// Interns the pattern subtree at `id`, its map keys into `keys`. The caller has checked
    /// the pattern with `jit::supported`, which bounds its depth.
    pub fn intern_pattern(&mut self, p: &Pattern, id: NodeId, keys: &mut KeyTable) -> ShapeId {
        let shape = match p.node(id) {
            Node::Map { start, len, .. } => Shape::Map(
                p.entries(*start, *len)
                    .iter()
                    .map(|e| {
                        let star = matches!(p.node(e.value), Node::Str(s) if &*s.raw == "*");
                        let (key, op) = match e.anchor {
                            // `+(k)` looks up the key as written (validation does not strip it).
                            Some(AnchorKind::AddIfNotPresent) | None => {
                                let key = if e.anchor.is_some() { &e.raw } else { &e.key };
                                let op = if star { EntryOp::Star } else { EntryOp::Plain(self.intern_pattern(p, e.value, keys)) };
                                (key, op)
                            }
                            Some(AnchorKind::Condition) => (&e.key, EntryOp::Condition(self.intern_pattern(p, e.value, keys))),
                            Some(AnchorKind::Global) => (&e.key, EntryOp::Global(self.intern_pattern(p, e.value, keys))),
                            Some(AnchorKind::Equality) => (&e.key, EntryOp::Equality(self.intern_pattern(p, e.value, keys))),
                            Some(AnchorKind::Negation) => (&e.key, EntryOp::Negation),
                            Some(AnchorKind::Existence) => (&e.key, EntryOp::Existence(self.intern_pattern(p, e.value, keys))),
                        };
                        ShapeEntry { key: keys.intern(key), op }
                    })
                    .collect(),
            ),
            Node::Seq { start, len } => Shape::Seq(p.items(*start, *len).iter().map(|&i| self.intern_pattern(p, i, keys)).collect()),
            node @ Node::Bool(value) => Shape::Bool { value: *value, konst: self.konst(node) },
            node => Shape::Scalar(self.konst(node)),
        };
        self.intern(shape)
    }

    fn intern(&mut self, shape: Shape) -> ShapeId {
        if let Some(&id) = self.ids.get(&shape) {
            return id;
        }
        let id = u32::try_from(self.shapes.len()).unwrap_or(u32::MAX);
        self.shapes.push(shape.clone());
        self.ids.insert(shape, id);
        id
    }

    fn konst(&mut self, node: &Node) -> u32 {
        let text = format!("{node:?}");
        if let Some(&id) = self.const_ids.get(&text) {
            return id;
        }
        let id = u32::try_from(self.consts.len()).unwrap_or(u32::MAX);
        self.consts.push(node.clone());
        self.const_ids.insert(text, id);
        id
    }

    /// The shapes a shape's code uses.
    pub fn children(&self, id: ShapeId) -> Vec<ShapeId> {
        match self.shape(id) {
            Some(Shape::Map(entries)) => entries.iter().filter_map(|e| e.op.value()).collect(),
            Some(Shape::Seq(items)) => items.to_vec(),
            _ => Vec::new(),
        }
    }

    /// Which shapes are shared: used in two or more places (a pattern's root counts as one)
    /// and not tiny once inlined. A shared shape gets its own function, which every use calls;
    /// every root gets a function too (its entry point), but a tiny root is still inlined where
    /// other patterns use it. A shape's children are interned before it, so one pass in id
    /// order sees every child's decision before its parent's.
    pub fn plan(&self, roots: &[ShapeId], min_size: u32) -> Vec<bool> {
        let n = self.shapes.len();
        let mut uses = vec![0u32; n];
        let children: Vec<Vec<ShapeId>> = (0..n as u32).map(|id| self.children(id)).collect();
        for &c in roots.iter().chain(children.iter().flatten()) {
            if let Some(u) = uses.get_mut(c as usize) {
                *u = u.saturating_add(1);
            }
        }
        let mut shared = vec![false; n];
        let mut size = vec![1u32; n];
        for (id, kids) in children.iter().enumerate() {
            let inner = kids
                .iter()
                .map(|&c| if shared.get(c as usize) == Some(&true) { 1 } else { size.get(c as usize).copied().unwrap_or(1) })
                .fold(0u32, u32::saturating_add);
            let s = inner.saturating_add(1);
            if let Some(slot) = size.get_mut(id) {
                *slot = s;
            }
            if let Some(o) = shared.get_mut(id).filter(|_| uses.get(id).is_some_and(|&u| u >= 2) && s >= min_size) {
                *o = true;
            }
        }
        shared
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn intern(shapes: &mut Shapes, keys: &mut KeyTable, v: serde_json::Value) -> ShapeId {
        let p = Pattern::lower(&v).expect("pattern lowers");
        shapes.intern_pattern(&p, p.root(), keys)
    }

    /// The container list repeated under `initContainers` and `containers` is shared, and so is
    /// the Pod pattern, which the autogen forms hold under `spec.template`. The controllers'
    /// form, which the CronJob form holds under `spec.jobTemplate`, is used twice too, but with
    /// the Pod pattern called, what is left of it is smaller than the bound, so it stays
    /// inline; so does a small pattern used twice.
    #[test]
    fn autogen_copies_and_repeated_containers_are_shared() {
        let container = json!({"=(securityContext)": {"=(privileged)": "false", "=(runAsNonRoot)": true}, "=(ports)": [{"=(hostPort)": 0}]});
        let spec = json!({"=(initContainers)": [container], "containers": [container]});
        let (mut shapes, mut keys) = (Shapes::default(), KeyTable::default());
        let pod = intern(&mut shapes, &mut keys, json!({"spec": spec}));
        let controllers = intern(&mut shapes, &mut keys, json!({"spec": {"template": {"spec": spec}}}));
        let cronjob = intern(&mut shapes, &mut keys, json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}));
        let small = intern(&mut shapes, &mut keys, json!({"metadata": {"name": "?*"}}));
        let small_too = intern(&mut shapes, &mut keys, json!({"spec": {"template": {"metadata": {"name": "?*"}}}}));
        let before = shapes.shapes.len();
        let list = intern(&mut shapes, &mut keys, json!([container]));
        assert_eq!(shapes.shapes.len(), before, "the same structure interns to the same shapes");
        let shared = shapes.plan(&[pod, controllers, cronjob, small, small_too], 4);
        let shared: Vec<ShapeId> = (0..shared.len() as u32).filter(|&i| shared[i as usize]).collect();
        let mut expected = vec![pod, list];
        expected.sort_unstable();
        assert_eq!(shared, expected);
        // The scalar constants are interned once for the whole batch.
        assert_eq!(shapes.into_consts().len(), 4, "\"false\", true, 0 and \"?*\"");
    }
}
