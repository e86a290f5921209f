//! The generic checks: a document is walked against its kind's schema
//! ([`crate::ast::schema`]) for unknown fields, wrong types, enum values, missing required
//! fields, mutually exclusive fields, deprecated fields and duplicate keys.

use super::codes;
use super::suggest::did_you_mean;
use crate::ast::schema::{Field, Obj, Ty};
use crate::diagnostic::Diagnostic;
use crate::syntax::{Node, Value};

/// Checks `node` against `ty`; `what` names the node in messages (e.g. `spec.rules[0]`).
pub fn check(node: &Node, ty: &Ty, what: &str, out: &mut Vec<Diagnostic>) {
    if node.is_null() {
        return;
    }
    match ty {
        Ty::Any => {}
        Ty::Str => expect(
            matches!(node.value, Value::Str(_)),
            node,
            "a string",
            what,
            out,
        ),
        Ty::Bool => expect(
            matches!(node.value, Value::Bool(_)),
            node,
            "a boolean (`true` or `false`)",
            what,
            out,
        ),
        Ty::Int => expect(
            matches!(node.value, Value::Int(_)),
            node,
            "an integer",
            what,
            out,
        ),
        Ty::IntOrStr => expect(
            matches!(node.value, Value::Int(_) | Value::Str(_)),
            node,
            "an integer or a string",
            what,
            out,
        ),
        Ty::Enum(allowed) => check_enum(node, allowed, what, out),
        Ty::Obj(obj) => check_obj(node, obj, what, out),
        Ty::Dict(value_ty) => match node.as_map() {
            Some(entries) => {
                check_duplicates(entries, out);
                for (k, v) in entries {
                    let key = k.as_key().unwrap_or_default();
                    check(v, value_ty, &format!("{what}.{key}"), out);
                }
            }
            None => expect(false, node, "a map", what, out),
        },
        Ty::List(item_ty) => match node.as_seq() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(item, item_ty, &format!("{what}[{i}]"), out);
                }
            }
            None => expect(false, node, "a list", what, out),
        },
    }
}

fn expect(ok: bool, node: &Node, wanted: &str, what: &str, out: &mut Vec<Diagnostic>) {
    if ok {
        return;
    }
    let mut d = Diagnostic::error(
        codes::WRONG_TYPE,
        node.span,
        format!(
            "`{what}` must be {wanted}, but this is {}",
            node.type_name()
        ),
    );
    // The classic YAML 1.1 surprise: an unquoted `yes`/`on`/`y` is a boolean.
    if wanted == "a string"
        && matches!(node.value, Value::Bool(_) | Value::Int(_) | Value::Float(_))
    {
        let text = format!("\"{}\"", node.as_key().unwrap_or_default());
        d = d
            .with_note("Kubernetes reads unquoted `yes`, `no`, `on`, `off`, numbers and the like as non-strings")
            .with_fix(format!("quote the value: {text}"), node.span, Some(text));
    }
    out.push(d);
}

fn check_enum(node: &Node, allowed: &[&str], what: &str, out: &mut Vec<Diagnostic>) {
    let Some(text) = node.as_str() else {
        expect(false, node, &format!("one of {}", list(allowed)), what, out);
        return;
    };
    if allowed.contains(&text) {
        return;
    }
    let mut d = Diagnostic::error(
        codes::BAD_ENUM,
        node.span,
        format!(
            "`{text}` is not a valid value of `{what}`; expected one of {}",
            list(allowed)
        ),
    );
    if let Some(best) = did_you_mean(text, allowed.iter().copied()) {
        d = d.with_fix(
            format!("did you mean `{best}`?"),
            node.span,
            Some(best.to_owned()),
        );
    }
    out.push(d);
}

pub(crate) fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_obj(node: &Node, obj: &Obj, what: &str, out: &mut Vec<Diagnostic>) {
    let Some(entries) = node.as_map() else {
        expect(false, node, "a map", what, out);
        return;
    };
    check_duplicates(entries, out);
    for (k, v) in entries {
        let Some(key) = k.as_key() else {
            out.push(Diagnostic::error(
                codes::WRONG_TYPE,
                k.span,
                "a map key must be a plain value, not a collection",
            ));
            continue;
        };
        let path = if what.is_empty() {
            key.to_string()
        } else {
            format!("{what}.{key}")
        };
        match obj.field(&key) {
            Some(field) => {
                deprecated(field, k, &path, out);
                check(v, &field.ty, &path, out);
            }
            None if obj.open => {}
            None => out.push(unknown_field(k, &key, obj, what)),
        }
    }
    for field in obj.fields.iter().filter(|f| f.required) {
        if node.get(field.name).is_none_or(Node::is_null) {
            let place = if what.is_empty() {
                "the document".to_owned()
            } else {
                format!("`{what}`")
            };
            out.push(Diagnostic::error(
                codes::MISSING_FIELD,
                node_head(node),
                format!("{place} is missing the required field `{}`", field.name),
            ));
        }
    }
    for group in obj.exclusive {
        let set: Vec<&Node> = group
            .iter()
            .filter_map(|name| node.entry(name))
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k)
            .collect();
        if let [first, rest @ ..] = set.as_slice() {
            for k in rest {
                let (a, b) = (
                    first.as_key().unwrap_or_default(),
                    k.as_key().unwrap_or_default(),
                );
                out.push(
                    Diagnostic::error(
                        codes::EXCLUSIVE,
                        k.span,
                        format!("`{b}` cannot be used together with `{a}` in `{what}`"),
                    )
                    .with_note(format!(
                        "only one of {} may be set; remove all but one",
                        list(group)
                    )),
                );
            }
        }
    }
}

/// Where to point for a whole map: its first key, so the caret sits on a meaningful line.
pub(crate) fn node_head(node: &Node) -> crate::source::Span {
    match node.as_map().and_then(<[_]>::first) {
        Some((k, _)) => k.span,
        None => node.span,
    }
}

fn deprecated(field: &Field, key: &Node, path: &str, out: &mut Vec<Diagnostic>) {
    if let Some(instead) = field.deprecated {
        out.push(
            Diagnostic::warning(
                codes::DEPRECATED_FIELD,
                key.span,
                format!("`{path}` is deprecated"),
            )
            .with_note("Kyverno still reads it, but it will be removed in a later release")
            .with_fix(instead, key.span, None),
        );
    }
}

fn unknown_field(key_node: &Node, key: &str, obj: &Obj, what: &str) -> Diagnostic {
    let place = if what.is_empty() {
        "this document".to_owned()
    } else {
        format!("`{what}`")
    };
    let mut d = Diagnostic::error(
        codes::UNKNOWN_FIELD,
        key_node.span,
        format!("unknown field `{key}` in {place}"),
    );
    match did_you_mean(key, obj.fields.iter().map(|f| f.name)) {
        Some(best) => {
            d = d
                .with_note("the API server rejects (or silently drops) fields it does not know")
                .with_fix(
                    format!("did you mean `{best}`?"),
                    key_node.span,
                    Some(best.to_owned()),
                );
        }
        None => {
            let names: Vec<&str> = obj.fields.iter().map(|f| f.name).collect();
            d = d.with_note(format!("known fields: {}", list(&names)));
        }
    }
    d
}

/// Reports keys that appear twice in one map; Kubernetes keeps only the last, silently.
pub fn check_duplicates(entries: &[(Node, Node)], out: &mut Vec<Diagnostic>) {
    if entries.len() < 2 {
        return;
    }
    let mut seen = std::collections::HashMap::new();
    for (k, _) in entries {
        let Some(key) = k.as_key() else { continue };
        if let Some(first) = seen.insert(key.clone(), k.span) {
            let _ = first;
            out.push(
                Diagnostic::error(
                    codes::DUPLICATE_KEY,
                    k.span,
                    format!("duplicate key `{key}`"),
                )
                .with_note(
                    "only the last value of a repeated key is kept; merge the two or remove one",
                ),
            );
        }
    }
}
