//! What a cursor path means: the document's kind and the schema type at a path, read from the
//! compiler's declarative schema.

use palisade_compiler::ast::schema::{ANY_ALL_CONDITIONS, Field, METADATA, Obj, Ty};
use palisade_compiler::ast::{self, Classified, Kind};
use palisade_compiler::{FileId, syntax};

use crate::cursor::Seg;

/// The `apiVersion` and `kind` written in one document, and the kind they name.
#[derive(Clone, Debug, Default)]
pub struct DocKind {
    pub api_version: Option<String>,
    pub kind_name: Option<String>,
    pub kind: Option<Kind>,
}

/// Reads `apiVersion` and `kind` from the top-level lines of a document's text and classifies
/// them as the checker does. Only those two lines are parsed, so the rest of the document may be
/// broken.
pub fn doc_kind(doc_text: &str) -> DocKind {
    let mut api = None;
    let mut kind = None;
    for line in doc_text.lines() {
        if let Some(v) = line.strip_prefix("apiVersion:") {
            api = Some(v.trim().trim_matches(['"', '\'']).to_owned());
        } else if let Some(v) = line.strip_prefix("kind:") {
            kind = Some(v.trim().trim_matches(['"', '\'']).to_owned());
        }
    }
    let classified = match (&api, &kind) {
        (Some(a), Some(k)) => {
            let text = format!("apiVersion: '{}'\nkind: '{}'\n", a.replace('\'', ""), k.replace('\'', ""));
            let (docs, _) = syntax::parse(FileId(0), &text);
            docs.first().map(|d| ast::classify(&d.root))
        }
        _ => None,
    };
    let kind_value = match classified {
        Some(Classified::Policy(k) | Classified::UnknownVersion { kind: k, .. }) => Some(k),
        _ => None,
    };
    DocKind { api_version: api, kind_name: kind, kind: kind_value }
}

/// The top level of every policy document. `spec` depends on the kind.
static ROOT: Obj = Obj {
    fields: &[
        Field { name: "apiVersion", ty: Ty::Str, required: true, deprecated: None },
        Field { name: "kind", ty: Ty::Str, required: true, deprecated: None },
        Field { name: "metadata", ty: Ty::Obj(&METADATA), required: true, deprecated: None },
        Field { name: "spec", ty: Ty::Any, required: true, deprecated: None },
    ],
    open: false,
    exclusive: &[],
};

/// Free-form fields that hold conditions; completion and hover treat them as `{any, all}`.
const CONDITION_FIELDS: &[&str] = &["preconditions", "conditions"];

/// Free-form fields that hold Kyverno patterns (anchors and operators apply inside).
pub const PATTERN_FIELDS: &[&str] = &["pattern", "anyPattern", "patchStrategicMerge"];

/// Fields whose string value is a JMESPath expression without `{{ }}`.
pub const JMESPATH_FIELDS: &[&str] = &["list", "jmesPath"];

/// Fields whose string value is a CEL expression.
pub const CEL_FIELDS: &[&str] = &["expression", "messageExpression", "valueExpression"];

/// The schema type found at a path.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// A map with known fields.
    Obj(&'static Obj),
    /// Any other type of the schema.
    Ty(&'static Ty),
    /// Free-form data under the field named here (a pattern, resource data, ...).
    Free(&'static str),
    /// Not described: an unknown field, or a kind this server does not know.
    Unknown,
}

impl Shape {
    fn of(ty: &'static Ty) -> Shape {
        match ty {
            Ty::Obj(obj) => Shape::Obj(obj),
            ty => Shape::Ty(ty),
        }
    }
}

/// The shape at `path` and the field the last key named.
#[derive(Clone, Copy, Debug)]
pub struct Resolved {
    pub shape: Shape,
    pub field: Option<&'static Field>,
}

/// Walks the schema of `kind` along `path`.
pub fn resolve(kind: Option<Kind>, path: &[Seg]) -> Resolved {
    let mut shape = Shape::Obj(&ROOT);
    let mut field = None;
    for (depth, seg) in path.iter().enumerate() {
        shape = match (shape, seg) {
            (Shape::Obj(obj), Seg::Key(k)) => match obj.field(k) {
                Some(f) => {
                    field = Some(f);
                    if depth == 0 && f.name == "spec" {
                        kind.map_or(Shape::Unknown, |kind| Shape::Obj(ast::spec_schema(kind)))
                    } else {
                        match &f.ty {
                            Ty::Any if CONDITION_FIELDS.contains(&f.name) => Shape::Obj(&ANY_ALL_CONDITIONS),
                            Ty::Any => Shape::Free(f.name),
                            ty => Shape::of(ty),
                        }
                    }
                }
                None => {
                    field = None;
                    Shape::Unknown
                }
            },
            (Shape::Ty(Ty::Dict(inner)), Seg::Key(_)) => Shape::of(inner),
            (Shape::Ty(Ty::List(inner)), Seg::Item) => Shape::of(inner),
            (Shape::Ty(Ty::Any), _) => Shape::Free(""),
            (Shape::Free(name), _) => Shape::Free(name),
            _ => Shape::Unknown,
        };
    }
    Resolved { shape, field }
}

/// A short description of a type for completion details and hover.
pub fn describe(ty: &Ty) -> String {
    match ty {
        Ty::Any => "any".into(),
        Ty::Str => "string".into(),
        Ty::Bool => "boolean".into(),
        Ty::Int => "integer".into(),
        Ty::IntOrStr => "integer or string".into(),
        Ty::Enum(values) => format!("one of {}", values.join(", ")),
        Ty::Obj(_) => "object".into(),
        Ty::Dict(inner) => format!("map of {}", describe(inner)),
        Ty::List(inner) => format!("list of {}", describe(inner)),
    }
}

/// Whether any map key along `path` is `key`.
pub fn inside(path: &[Seg], key: &str) -> bool {
    path.iter().any(|s| matches!(s, Seg::Key(k) if k == key))
}

/// The last key of a path.
pub fn last_key(path: &[Seg]) -> Option<&str> {
    path.iter().rev().find_map(|s| match s {
        Seg::Key(k) => Some(k.as_str()),
        Seg::Item => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> Vec<Seg> {
        s.split('.')
            .filter(|p| !p.is_empty())
            .map(|p| if p == "[]" { Seg::Item } else { Seg::Key(p.into()) })
            .collect()
    }

    #[test]
    fn resolves_through_the_compiler_schema() {
        let k = doc_kind("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\n").kind;
        assert!(k.is_some());
        let r = resolve(k, &path("spec.rules.[].validate.failureAction"));
        assert!(matches!(r.shape, Shape::Ty(Ty::Enum(v)) if v.contains(&"Enforce")));
        let r = resolve(k, &path("spec.rules.[].validate.pattern.spec"));
        assert!(matches!(r.shape, Shape::Free("pattern")));
        let r = resolve(k, &path("spec.rules.[].preconditions.all.[]"));
        assert!(matches!(r.shape, Shape::Obj(o) if o.field("operator").is_some()));
        let r = resolve(None, &path("spec.rules"));
        assert!(matches!(r.shape, Shape::Unknown));
    }
}
