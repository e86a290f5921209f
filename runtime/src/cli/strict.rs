//! Strict decoding of the CLI's own YAML files (tests, values, user info, contexts).
//!
//! Kyverno decodes these with Go's `encoding/json` after a YAML-to-JSON step, with unknown fields
//! forbidden. Two consequences we keep: an unknown key is an error naming the file, line and
//! column, and field names match case-insensitively when no exact match exists (Go's
//! `encoding/json` does that, and the Kyverno corpus relies on it: `isMUtatingPolicy`).

use palisade_compiler::check::did_you_mean;
use palisade_compiler::diagnostic::Diagnostic;
use palisade_compiler::syntax::{Node, Value};

/// The diagnostic code of every strict-decoding error.
pub const CODE: &str = "P0900";

/// A map being decoded: fields are taken one by one, and whatever is left is unknown.
pub struct Obj<'a> {
    node: &'a Node,
    entries: &'a [(Node, Node)],
    taken: Vec<bool>,
    what: &'static str,
}

impl<'a> Obj<'a> {
    /// Starts decoding `node` as the map `what` (used in messages); a non-map is an error.
    pub fn new(node: &'a Node, what: &'static str, errors: &mut Vec<Diagnostic>) -> Option<Obj<'a>> {
        match &node.value {
            Value::Map(entries) => Some(Obj { node, entries, taken: vec![false; entries.len()], what }),
            Value::Null => Some(Obj { node, entries: &[], taken: Vec::new(), what }),
            _ => {
                errors.push(Diagnostic::error(
                    CODE,
                    node.span,
                    format!("{what} must be a map, found {}", node.type_name()),
                ));
                None
            }
        }
    }

    /// Takes the field `name`: an exact key first, else the first key equal ignoring case.
    pub fn take(&mut self, name: &str) -> Option<&'a Node> {
        let exact = self.entries.iter().position(|(k, _)| k.as_key().as_deref() == Some(name));
        let index = exact.or_else(|| {
            self.entries.iter().enumerate().position(|(i, (k, _))| {
                !self.taken.get(i).copied().unwrap_or(true)
                    && k.as_key().is_some_and(|k| k.eq_ignore_ascii_case(name))
            })
        })?;
        if let Some(t) = self.taken.get_mut(index) {
            *t = true;
        }
        self.entries.get(index).map(|(_, v)| v)
    }

    pub fn string(&mut self, name: &str, errors: &mut Vec<Diagnostic>) -> Option<String> {
        let node = self.take(name)?;
        scalar_string(node, name, errors)
    }

    pub fn bool(&mut self, name: &str, errors: &mut Vec<Diagnostic>) -> bool {
        match self.take(name) {
            None => false,
            Some(n) => match n.value {
                Value::Bool(b) => b,
                Value::Null => false,
                _ => {
                    errors.push(Diagnostic::error(CODE, n.span, format!("`{name}` must be true or false, found {}", n.type_name())));
                    false
                }
            },
        }
    }

    pub fn strings(&mut self, name: &str, errors: &mut Vec<Diagnostic>) -> Vec<String> {
        match self.take(name) {
            None => Vec::new(),
            Some(n) => strings(n, name, errors),
        }
    }

    /// Reports every key that no `take` claimed, with the closest known name as a hint.
    pub fn finish(self, known: &[&str], errors: &mut Vec<Diagnostic>) {
        for ((key, _), taken) in self.entries.iter().zip(&self.taken) {
            if *taken {
                continue;
            }
            let text = key.as_key().unwrap_or_default();
            let mut d = Diagnostic::error(CODE, key.span, format!("unknown field `{text}` in {}", self.what));
            if let Some(best) = did_you_mean(&text, known.iter().copied()) {
                d = d.with_fix(format!("did you mean `{best}`?"), key.span, Some(best.to_string()));
            } else {
                d = d.with_note(format!("known fields: {}", known.join(", ")));
            }
            errors.push(d);
        }
    }

    pub fn node(&self) -> &'a Node {
        self.node
    }
}

pub fn scalar_string(node: &Node, name: &str, errors: &mut Vec<Diagnostic>) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.text.clone()),
        Value::Null => None,
        // Scalars that YAML resolved to another type keep their text, as Go's decoding into a
        // string field would not accept them; we accept them with their canonical text.
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => node.as_key().map(|k| k.into_owned()),
        _ => {
            errors.push(Diagnostic::error(CODE, node.span, format!("`{name}` must be a string, found {}", node.type_name())));
            None
        }
    }
}

pub fn strings(node: &Node, name: &str, errors: &mut Vec<Diagnostic>) -> Vec<String> {
    match &node.value {
        Value::Seq(items) => items.iter().filter_map(|i| scalar_string(i, name, errors)).collect(),
        Value::Null => Vec::new(),
        _ => {
            errors.push(Diagnostic::error(CODE, node.span, format!("`{name}` must be a list of strings, found {}", node.type_name())));
            Vec::new()
        }
    }
}
