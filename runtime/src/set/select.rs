//! Rule selection (`match`/`exclude`) over the matching document.
//!
//! This is [`crate::engine`]'s selection, decision for decision, reading the parsed document
//! instead of a `serde_json::Value`; the set agreement test compares the two engines' results
//! on the corpus.

use std::cell::RefCell;

use palisade_compiler::ir::policy::{Filter, LabelSelector, Match, RuleIr};

use super::SetRequest;
use crate::doc::{Doc, TAG_OBJECT};

/// What selection reads of the resource, found once per request: every candidate rule has a
/// `match` block, and each used to look these fields up again. It also keeps the request's
/// selection results by selector: most rules of a set share their `match` and `exclude`
/// (`kinds: [Pod]`), and each distinct pair is decided once.
pub(super) struct Subject<'d> {
    group: &'d str,
    version: &'d str,
    pub(super) kind: &'d str,
    /// `metadata.name`, or `metadata.generateName` when the name is empty.
    name: &'d str,
    /// `metadata.namespace`, or for a Namespace its name.
    namespace: &'d str,
    meta: Option<u32>,
    /// (selector, selected) for the selectors decided so far.
    decided: RefCell<Vec<(u32, bool)>>,
}

/// Distinct selectors one request keeps results for; a request's candidate rules rarely have
/// more, and past it selection is still decided, just not kept.
const DECIDED_CAPACITY: usize = 32;

impl<'d> Subject<'d> {
    pub(super) fn new(req: &SetRequest<'d, '_>) -> Subject<'d> {
        let doc = req.doc;
        let r = req.resource;
        let api = doc.get_str(r, &["apiVersion"]).unwrap_or_default();
        let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
        let kind = doc.get_str(r, &["kind"]).unwrap_or_default();
        let meta = doc.get(r, "metadata");
        let str_at = |p: &str| meta.and_then(|m| doc.get_str(m, &[p])).unwrap_or_default();
        let name = str_at("name");
        let namespace = if kind == "Namespace" { name } else { str_at("namespace") };
        let name = if name.is_empty() { str_at("generateName") } else { name };
        Subject { group, version, kind, name, namespace, meta, decided: RefCell::new(Vec::new()) }
    }
}

/// Whether the rule selects the request. `selector` names the rule's `match` and `exclude`
/// (rules with equal ones share it, [`selector_key`]).
pub(super) fn selected_by(rule: &RuleIr, selector: u32, req: &SetRequest, subject: &Subject) -> bool {
    if let Some(&(_, known)) = subject.decided.borrow().iter().find(|(s, _)| *s == selector) {
        return known;
    }
    let result = selected(rule, req, subject);
    let mut decided = subject.decided.borrow_mut();
    if decided.len() < DECIDED_CAPACITY {
        decided.push((selector, result));
    }
    result
}

/// What decides whether a rule selects a request: its `match` and `exclude`, as text. Rules
/// with the same key select the same requests.
pub(super) fn selector_key(rule: &RuleIr) -> Option<String> {
    serde_json::to_string(&(&rule.matcher, &rule.exclude)).ok()
}

pub(super) fn selected(rule: &RuleIr, req: &SetRequest, subject: &Subject) -> bool {
    if !match_block(&rule.matcher, req, subject) {
        return false;
    }
    match &rule.exclude {
        Some(ex) if !(ex.any.is_empty() && ex.all.is_empty()) => !match_block(ex, req, subject),
        _ => true,
    }
}

fn match_block(m: &Match, req: &SetRequest, subject: &Subject) -> bool {
    if !m.any.is_empty() {
        return m.any.iter().any(|f| filter_matches(f, req, subject));
    }
    if !m.all.is_empty() {
        return m.all.iter().all(|f| filter_matches(f, req, subject));
    }
    false
}

fn filter_matches(f: &Filter, req: &SetRequest, subject: &Subject) -> bool {
    let doc = req.doc;
    let Subject { group, version, kind, name, namespace, meta, .. } = *subject;
    if !f.kinds.is_empty() && !f.kinds.iter().any(|k| k.matches(group, version, kind, "")) {
        return false;
    }
    if !f.names.is_empty() && !f.names.iter().any(|w| w.matches(name)) {
        return false;
    }
    if !f.namespaces.is_empty() && !f.namespaces.iter().any(|w| w.matches(namespace)) {
        return false;
    }
    if !f.operations.is_empty() && !f.operations.iter().any(|o| o == req.operation) {
        return false;
    }
    if !f.annotations.is_empty() {
        let annotations = meta.and_then(|m| doc.get(m, "annotations")).filter(|&a| doc.node(a).tag == TAG_OBJECT);
        let ok = f.annotations.iter().all(|(k, v)| {
            annotations.is_some_and(|a| pairs(doc, a).any(|(ak, av)| k.matches(ak) && v.matches(av.unwrap_or_default())))
        });
        if !ok {
            return false;
        }
    }
    if let Some(sel) = &f.selector {
        let labels = meta.and_then(|m| doc.get(m, "labels")).filter(|&l| doc.node(l).tag == TAG_OBJECT);
        if !selector_matches(sel, doc, labels) {
            return false;
        }
    }
    if let Some(sel) = &f.namespace_selector {
        // The set engine serves requests without namespace labels (the webhook has none at
        // hand), which the interpreter reads as an empty label set.
        if kind == "Namespace" || !selector_matches(sel, doc, None) {
            return false;
        }
    }
    crate::engine::user_matches(f, req.user)
}

/// The members of an object as (key, string value), in document order with repeated keys
/// reduced to their last value (as `serde_json` maps hold them).
fn pairs<'d>(doc: &'d Doc, object: u32) -> impl Iterator<Item = (&'d str, Option<&'d str>)> + 'd {
    let members = doc.members(object);
    members.iter().enumerate().filter_map(move |(i, m)| {
        let key = doc.key_of(m);
        // A key that appears again later is represented by its last value at its first position.
        if members.iter().take(i).any(|e| doc.key_of(e) == key) {
            return None;
        }
        let last = members.iter().rev().find(|e| doc.key_of(e) == key).map_or(m.value, |e| e.value);
        Some((key, doc.str(last)))
    })
}

fn selector_matches(sel: &LabelSelector, doc: &Doc, labels: Option<u32>) -> bool {
    let label = |k: &str| labels.and_then(|l| doc.get(l, k)).and_then(|n| doc.str(n));
    let has = |k: &str| labels.and_then(|l| doc.get(l, k)).is_some();
    let labels_ok = sel
        .match_labels
        .iter()
        .all(|(k, v)| labels.is_some_and(|l| pairs(doc, l).any(|(lk, lv)| k.matches(lk) && v.matches(lv.unwrap_or_default()))));
    labels_ok
        && sel.match_expressions.iter().all(|e| match e.operator.as_str() {
            "In" => label(&e.key).is_some_and(|v| e.values.iter().any(|x| x == v)),
            "NotIn" => label(&e.key).is_none_or(|v| !e.values.iter().any(|x| x == v)),
            "Exists" => has(&e.key),
            "DoesNotExist" => !has(&e.key),
            _ => false,
        })
}
