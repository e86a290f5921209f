//! The checker: every problem in a set of policy documents, never stopping at the first.
//!
//! [`check_source`] parses a file and checks it; [`check`] checks parsed documents. Both return
//! the typed policies they could build and every diagnostic, sorted by position. Codes are listed
//! in [`codes`].

mod cel;
pub mod codes;
mod expr;
mod policy;
mod schema;
mod shapes;
mod suggest;

pub use policy::OPERATORS as CONDITION_OPERATORS;
pub use suggest::{did_you_mean, distance};

use crate::ast::schema::{Field, Obj, Ty};
use crate::ast::{self, Classified, Policy};
use crate::diagnostic::Diagnostic;
use crate::source::FileId;
use crate::syntax::{self, Document};

/// Parses and checks one file.
pub fn check_source(file: FileId, text: &str) -> (Vec<Policy>, Vec<Diagnostic>) {
    let (docs, mut diags) = syntax::parse(file, text);
    let (policies, more) = check(&docs);
    diags.extend(more);
    sort(&mut diags);
    (policies, diags)
}

/// Checks parsed documents. Documents that are not policies are skipped: non-Kubernetes YAML
/// silently, other Kubernetes kinds with a note.
pub fn check(documents: &[Document]) -> (Vec<Policy>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut policies = Vec::new();
    for doc in documents {
        if let Some(policy) = check_document(doc, &mut diags) {
            policies.push(policy);
        }
    }
    sort(&mut diags);
    (policies, diags)
}

/// Whether a document is a policy of a kind this compiler knows (at any API version).
pub fn is_policy(doc: &Document) -> bool {
    matches!(
        ast::classify(&doc.root),
        Classified::Policy(_) | Classified::UnknownVersion { .. }
    )
}

fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.span.file, d.span.start, d.span.end));
}

static TOP: Obj = Obj {
    fields: &[
        Field {
            name: "apiVersion",
            ty: Ty::Str,
            required: true,
            deprecated: None,
        },
        Field {
            name: "kind",
            ty: Ty::Str,
            required: true,
            deprecated: None,
        },
        Field {
            name: "metadata",
            ty: Ty::Obj(&ast::schema::METADATA),
            required: true,
            deprecated: None,
        },
        Field {
            name: "status",
            ty: Ty::Any,
            required: false,
            deprecated: None,
        },
    ],
    // `spec` and unknown top-level fields are handled by `check_document`.
    open: true,
    exclusive: &[],
};

fn check_document(doc: &Document, out: &mut Vec<Diagnostic>) -> Option<Policy> {
    // Half a document would only add confusing follow-up errors to the syntax error.
    if doc.truncated {
        return None;
    }
    let root = &doc.root;
    let kind = match ast::classify(root) {
        Classified::NotKubernetes => return None,
        Classified::Other => {
            let kind = root.get("kind").map_or(root.span, |k| k.span);
            out.push(Diagnostic::note_only(
                codes::NOT_A_POLICY,
                kind,
                format!(
                    "`{}` is not a policy kind; this document is skipped",
                    root.get("kind")
                        .and_then(syntax::Node::as_str)
                        .unwrap_or_default()
                ),
            ));
            return None;
        }
        Classified::UnknownVersion { kind, served } => {
            if let Some(api) = root.get("apiVersion") {
                let text = api.as_str().unwrap_or_default();
                let mut d = Diagnostic::error(
                    codes::UNSERVED_VERSION,
                    api.span,
                    format!(
                        "`{text}` does not serve this kind; use one of {}",
                        schema::list(served)
                    ),
                );
                if let Some(best) = served.first() {
                    d = d.with_fix(format!("use `{best}`"), api.span, Some((*best).to_owned()));
                }
                out.push(d);
            }
            kind
        }
        Classified::Policy(kind) => kind,
    };
    // The top level: apiVersion, kind, metadata; `spec` is checked against the kind's schema.
    schema::check(root, &Ty::Obj(&TOP), "", out);
    let mut known = false;
    for (k, v) in root.as_map().unwrap_or(&[]) {
        match k.as_key().as_deref() {
            Some("apiVersion" | "kind" | "metadata" | "status") => {}
            Some("spec") => {
                known = true;
                schema::check(v, &Ty::Obj(ast::spec_schema(kind)), "spec", out);
            }
            Some(other) => {
                let mut d = Diagnostic::error(
                    codes::UNKNOWN_FIELD,
                    k.span,
                    format!("unknown top-level field `{other}`"),
                );
                if let Some(best) =
                    did_you_mean(other, ["apiVersion", "kind", "metadata", "spec", "status"])
                {
                    d = d.with_fix(
                        format!("did you mean `{best}`?"),
                        k.span,
                        Some(best.to_owned()),
                    );
                }
                out.push(d);
            }
            None => {}
        }
    }
    if !known {
        out.push(Diagnostic::error(
            codes::MISSING_FIELD,
            schema::node_head(root),
            "the document is missing the required field `spec`",
        ));
    }
    let metadata = root.get("metadata");
    let named =
        metadata.is_some_and(|m| m.get("name").is_some() || m.get("generateName").is_some());
    if !named {
        out.push(
            Diagnostic::error(
                codes::MISSING_NAME,
                metadata.map_or_else(|| schema::node_head(root), |m| m.span),
                "the policy has no `metadata.name`",
            )
            .with_note("every Kubernetes object needs a name; add `metadata: {name: ...}`"),
        );
    }
    cel::check(root, out);
    let policy = ast::build(doc)?;
    policy::check(&policy, root, out);
    Some(policy)
}
