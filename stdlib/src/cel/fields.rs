//! The object fields a CEL expression reads: every field selection rooted at `object` or
//! `oldObject`, followed through comprehension variables (`object.spec.containers.all(c,
//! c.image ...)` reads `spec.containers[].image`) and `cel.bind`. The checker compares them with
//! the object's shape when the policy names the kinds it matches.

use cel::IdedExpr;
use cel::common::ast::{EntryExpr, Expr, LiteralValue, SourceInfo};

/// One step from the root to a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Field(String),
    /// An element of a list, or a value of a map (`x[i]`, `x[key]`).
    Elem,
    /// What a comprehension iterates: the elements of a list, the keys of a map.
    Iter,
}

/// A field selection: the root variable, the steps to the field (the field last) and where
/// the field's name is, in characters from the start of the expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldUse {
    pub root: String,
    pub steps: Vec<Step>,
    pub offset: usize,
    pub len: usize,
}

type Path = (String, Vec<Step>);

/// The field uses of an expression, in source order; none when it does not parse (the
/// syntax check reports that).
pub fn field_uses(source: &str) -> Vec<FieldUse> {
    if super::compile(source).is_err() {
        return Vec::new();
    }
    let owned = source.to_owned();
    let parsed = std::thread::Builder::new().stack_size(super::PARSER_STACK).spawn(move || {
        let env = super::env().ok()?;
        let (expr, info) = env.parser().parse_with_source_info(&owned).ok()?;
        let mut out = Vec::new();
        let mut scope = Vec::new();
        resolve(&expr, &mut scope, &info, &owned, &mut out);
        Some(out)
    });
    let mut uses = parsed.ok().and_then(|h| h.join().ok()).flatten().unwrap_or_default();
    uses.sort_by_key(|u| u.offset);
    uses.dedup();
    uses
}

fn resolve(e: &IdedExpr, scope: &mut Vec<(String, Option<Path>)>, info: &SourceInfo, source: &str, out: &mut Vec<FieldUse>) -> Option<Path> {
    match &e.expr {
        Expr::Ident(name) => match scope.iter().rev().find(|(n, _)| n == name) {
            Some((_, bound)) => bound.clone(),
            None if name == "object" || name == "oldObject" => Some((name.clone(), Vec::new())),
            None => None,
        },
        Expr::Select(s) => {
            let (root, mut steps) = resolve(&s.operand, scope, info, source, out)?;
            steps.push(Step::Field(s.field.clone()));
            record(e.id, &s.field, &root, &steps, info, source, out);
            Some((root, steps))
        }
        Expr::Call(c) => {
            let target = c.target.as_ref().and_then(|t| resolve(t, scope, info, source, out));
            let args: Vec<Option<Path>> = c.args.iter().map(|a| resolve(a, scope, info, source, out)).collect();
            match (c.func_name.as_str(), args.first().cloned().flatten(), c.args.get(1).map(|a| &a.expr)) {
                ("_[_]" | "_[?_]", Some((root, mut steps)), _) => {
                    steps.push(Step::Elem);
                    Some((root, steps))
                }
                ("_?._", Some((root, mut steps)), Some(Expr::Literal(LiteralValue::String(field)))) => {
                    let field = field.to_string();
                    steps.push(Step::Field(field.clone()));
                    record(e.id, &field, &root, &steps, info, source, out);
                    Some((root, steps))
                }
                _ => {
                    let _ = target;
                    None
                }
            }
        }
        Expr::Comprehension(c) => {
            let range = resolve(&c.iter_range, scope, info, source, out).map(|(root, mut steps)| {
                steps.push(Step::Iter);
                (root, steps)
            });
            // `cel.bind(name, init, body)` is a comprehension whose accumulator is `name`.
            let accu = resolve(&c.accu_init, scope, info, source, out);
            let depth = scope.len();
            scope.push((c.accu_var.clone(), accu));
            match &c.iter_var2 {
                Some(second) => {
                    scope.push((c.iter_var.clone(), None));
                    scope.push((second.clone(), range));
                }
                None => scope.push((c.iter_var.clone(), range)),
            }
            for x in [&c.loop_cond, &c.loop_step, &c.result] {
                resolve(x, scope, info, source, out);
            }
            scope.truncate(depth);
            None
        }
        Expr::List(l) => {
            for x in &l.elements {
                resolve(x, scope, info, source, out);
            }
            None
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                visit_entry(&entry.expr, scope, info, source, out);
            }
            None
        }
        Expr::Struct(st) => {
            for entry in &st.entries {
                visit_entry(&entry.expr, scope, info, source, out);
            }
            None
        }
        Expr::Literal(_) | Expr::Unspecified => None,
    }
}

fn visit_entry(e: &EntryExpr, scope: &mut Vec<(String, Option<Path>)>, info: &SourceInfo, source: &str, out: &mut Vec<FieldUse>) {
    match e {
        EntryExpr::StructField(f) => {
            resolve(&f.value, scope, info, source, out);
        }
        EntryExpr::MapEntry(m) => {
            resolve(&m.key, scope, info, source, out);
            resolve(&m.value, scope, info, source, out);
        }
    }
}

/// Records a field use at the field's name, found in the source from the node's position on.
fn record(id: u64, field: &str, root: &str, steps: &[Step], info: &SourceInfo, source: &str, out: &mut Vec<FieldUse>) {
    let start = info.offset_for(id).map_or(0, |(s, _)| s as usize);
    let chars: Vec<char> = source.chars().collect();
    let name: Vec<char> = field.chars().collect();
    let found = (start.min(chars.len())..chars.len()).find(|&i| chars.get(i..i + name.len()) == Some(name.as_slice()));
    if let Some(offset) = found {
        out.push(FieldUse { root: root.to_owned(), steps: steps.to_vec(), offset, len: name.len() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(source: &str) -> Vec<String> {
        field_uses(source)
            .iter()
            .map(|u| {
                let steps: Vec<String> = u
                    .steps
                    .iter()
                    .map(|s| match s {
                        Step::Field(f) => f.clone(),
                        Step::Elem => "[]".into(),
                        Step::Iter => "*".into(),
                    })
                    .collect();
                format!("{}.{}@{}", u.root, steps.join("."), u.offset)
            })
            .collect()
    }

    #[test]
    fn fields_are_followed_through_comprehensions_and_binds() {
        assert_eq!(
            show("object.spec.containers.all(c, !has(c.securityContext) || c.securityContext.privileged != true)"),
            [
                "object.spec@7",
                "object.spec.containers@12",
                "object.spec.containers.*.securityContext@37",
                "object.spec.containers.*.securityContext@59",
                "object.spec.containers.*.securityContext.privileged@75",
            ]
        );
        assert_eq!(show("cel.bind(m, oldObject.metadata, m.labels['a'] == 'b')"), ["oldObject.metadata@22", "oldObject.metadata.labels@34"]);
        assert_eq!(show("object.?spec.?hostPID.orValue(false)"), ["object.spec@8", "object.spec.hostPID@14"]);
        // Shadowing: `object` bound by a comprehension is not the request's object.
        assert_eq!(show("[1].all(object, object.x == 1)"), Vec::<String>::new());
        assert_eq!(show("request.object.spec"), Vec::<String>::new());
        assert_eq!(show("not valid ("), Vec::<String>::new());
    }
}
