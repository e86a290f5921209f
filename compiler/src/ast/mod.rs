//! The typed policy AST, one type per policy kind, every node with its span.
//!
//! Building the AST never fails: a field of the wrong type or a missing field is simply absent
//! here, and the checker (which walks the same YAML against [`schema`]) reports it. Fields that
//! hold patterns or resource data keep the raw spanned [`Node`]; the pattern module turns them
//! into typed patterns. Strings that hold JMESPath, CEL or `{{ }}` templates are [`Str`]s, which
//! can point at a column inside the string.

pub mod cel;
pub mod docs;
pub mod json_schema;
pub mod kyverno;
pub mod schema;

use crate::source::Span;
use crate::syntax::{Document, Node, Value};

pub use cel::{Binding, CelPolicy, CelPolicyKind};
pub use kyverno::{CleanupPolicy, GlobalContextEntry, KyvernoPolicy, PolicyException};

/// A string value with its span; positions inside the string are exact when the YAML scalar
/// maps one-to-one onto the source.
#[derive(Clone, Debug, PartialEq)]
pub struct Str {
    pub text: String,
    pub span: Span,
    content_offset: Option<u32>,
}

impl Str {
    pub fn from_node(node: &Node) -> Option<Str> {
        match &node.value {
            Value::Str(s) => Some(Str {
                text: s.text.clone(),
                span: node.span,
                content_offset: s.content_offset,
            }),
            _ => None,
        }
    }

    /// The span of bytes `range` of the string, or the whole string's span when the string does
    /// not map one-to-one onto the source (escapes, folded lines).
    pub fn sub_span(&self, range: std::ops::Range<usize>) -> Span {
        match self.content_offset {
            Some(off) => Span::new(
                self.span.file,
                (off as usize).saturating_add(range.start),
                (off as usize).saturating_add(range.end),
            ),
            None => self.span,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A scalar with its span.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

/// The kind of a policy document, from `apiVersion` and `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ClusterPolicy,
    Policy,
    PolicyException,
    CleanupPolicy,
    ClusterCleanupPolicy,
    GlobalContextEntry,
    Cel(CelPolicyKind),
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
    MutatingAdmissionPolicy,
    MutatingAdmissionPolicyBinding,
}

/// One typed policy document.
#[derive(Clone, Debug, PartialEq)]
pub enum Policy {
    Kyverno(Box<KyvernoPolicy>),
    Exception(Box<PolicyException>),
    Cleanup(Box<CleanupPolicy>),
    GlobalContext(Box<GlobalContextEntry>),
    Cel(Box<CelPolicy>),
    Binding(Box<Binding>),
}

/// What every document has: its kind, name and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub kind: Kind,
    pub api_version: Str,
    pub kind_span: Span,
    pub name: Option<Str>,
    pub namespace: Option<Str>,
    pub annotations: Vec<(Str, Str)>,
    /// The whole document.
    pub span: Span,
}

impl Policy {
    pub fn header(&self) -> &Header {
        match self {
            Policy::Kyverno(p) => &p.header,
            Policy::Exception(p) => &p.header,
            Policy::Cleanup(p) => &p.header,
            Policy::GlobalContext(p) => &p.header,
            Policy::Cel(p) => &p.header,
            Policy::Binding(p) => &p.header,
        }
    }
}

/// How a document's `apiVersion`/`kind` was recognised.
#[derive(Clone, Debug, PartialEq)]
pub enum Classified {
    /// A policy kind this compiler knows, served at this API version.
    Policy(Kind),
    /// A known kind at an API version Kyverno does not serve for it.
    UnknownVersion {
        kind: Kind,
        served: &'static [&'static str],
    },
    /// A Kubernetes object of another kind (a resource, a test file): not a policy.
    Other,
    /// Not a Kubernetes object at all (no `apiVersion` or `kind`).
    NotKubernetes,
}

pub(crate) const KYVERNO_V1: &[&str] = &["kyverno.io/v1", "kyverno.io/v2beta1"];
pub(crate) const KYVERNO_V2: &[&str] = &["kyverno.io/v2", "kyverno.io/v2beta1", "kyverno.io/v2alpha1"];
pub(crate) const POLICIES: &[&str] = &[
    "policies.kyverno.io/v1",
    "policies.kyverno.io/v1beta1",
    "policies.kyverno.io/v1alpha1",
];
pub(crate) const ADMISSION: &[&str] = &[
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1beta1",
    "admissionregistration.k8s.io/v1alpha1",
];

/// Recognises a document's kind from its `apiVersion` and `kind`.
pub fn classify(root: &Node) -> Classified {
    let (Some(api), Some(kind)) = (
        root.get("apiVersion").and_then(Node::as_str),
        root.get("kind").and_then(Node::as_str),
    ) else {
        return Classified::NotKubernetes;
    };
    let group = api.split_once('/').map_or("", |(g, _)| g);
    let (kind, served) = match (group, kind) {
        ("kyverno.io", "ClusterPolicy") => (Kind::ClusterPolicy, KYVERNO_V1),
        ("kyverno.io", "Policy") => (Kind::Policy, KYVERNO_V1),
        ("kyverno.io", "PolicyException") => (Kind::PolicyException, KYVERNO_V2),
        ("kyverno.io", "CleanupPolicy") => (Kind::CleanupPolicy, KYVERNO_V2),
        ("kyverno.io", "ClusterCleanupPolicy") => (Kind::ClusterCleanupPolicy, KYVERNO_V2),
        ("kyverno.io", "GlobalContextEntry") => (Kind::GlobalContextEntry, KYVERNO_V2),
        ("policies.kyverno.io", k) => match CelPolicyKind::from_kind(k) {
            Some(c) => (Kind::Cel(c), POLICIES),
            None => return Classified::Other,
        },
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
            (Kind::ValidatingAdmissionPolicy, ADMISSION)
        }
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            (Kind::ValidatingAdmissionPolicyBinding, ADMISSION)
        }
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicy") => {
            (Kind::MutatingAdmissionPolicy, ADMISSION)
        }
        ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding") => {
            (Kind::MutatingAdmissionPolicyBinding, ADMISSION)
        }
        _ => return Classified::Other,
    };
    if served.contains(&api) {
        Classified::Policy(kind)
    } else {
        Classified::UnknownVersion { kind, served }
    }
}

/// The schema of a kind's `spec`.
pub fn spec_schema(kind: Kind) -> &'static schema::Obj {
    match kind {
        Kind::ClusterPolicy | Kind::Policy => &schema::KYVERNO_SPEC,
        Kind::PolicyException => &schema::POLICY_EXCEPTION_SPEC,
        Kind::CleanupPolicy | Kind::ClusterCleanupPolicy => &schema::CLEANUP_SPEC,
        Kind::GlobalContextEntry => &schema::GLOBAL_CONTEXT_ENTRY_SPEC,
        Kind::Cel(c) => c.spec_schema(),
        Kind::ValidatingAdmissionPolicy => &schema::VAP_SPEC,
        Kind::MutatingAdmissionPolicy => &schema::MAP_SPEC,
        Kind::ValidatingAdmissionPolicyBinding | Kind::MutatingAdmissionPolicyBinding => {
            &schema::BINDING_SPEC
        }
    }
}

/// Builds the typed AST of a policy document, or `None` if it is not a policy this compiler
/// knows (see [`classify`]).
pub fn build(doc: &Document) -> Option<Policy> {
    let kind = match classify(&doc.root) {
        Classified::Policy(kind) | Classified::UnknownVersion { kind, .. } => kind,
        Classified::Other | Classified::NotKubernetes => return None,
    };
    let header = header(kind, doc)?;
    let spec = doc.root.get("spec");
    Some(match kind {
        Kind::ClusterPolicy | Kind::Policy => {
            Policy::Kyverno(Box::new(kyverno::build_policy(header, spec)))
        }
        Kind::PolicyException => {
            Policy::Exception(Box::new(kyverno::build_exception(header, spec)))
        }
        Kind::CleanupPolicy | Kind::ClusterCleanupPolicy => {
            Policy::Cleanup(Box::new(kyverno::build_cleanup(header, spec)))
        }
        Kind::GlobalContextEntry => {
            Policy::GlobalContext(Box::new(kyverno::build_global_context(header, spec)))
        }
        Kind::ValidatingAdmissionPolicyBinding | Kind::MutatingAdmissionPolicyBinding => {
            Policy::Binding(Box::new(cel::build_binding(header, spec)))
        }
        Kind::Cel(_) | Kind::ValidatingAdmissionPolicy | Kind::MutatingAdmissionPolicy => {
            Policy::Cel(Box::new(cel::build_policy(header, spec)))
        }
    })
}

fn header(kind: Kind, doc: &Document) -> Option<Header> {
    let root = &doc.root;
    let api_version = root.get("apiVersion").and_then(Str::from_node)?;
    let kind_span = root.get("kind")?.span;
    let meta = root.get("metadata");
    let annotations = meta
        .and_then(|m| m.get("annotations"))
        .and_then(Node::as_map)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|(k, v)| Some((Str::from_node(k)?, Str::from_node(v)?)))
                .collect()
        })
        .unwrap_or_default();
    Some(Header {
        kind,
        api_version,
        kind_span,
        name: meta.and_then(|m| m.get("name")).and_then(Str::from_node),
        namespace: meta
            .and_then(|m| m.get("namespace"))
            .and_then(Str::from_node),
        annotations,
        span: doc.span,
    })
}

// Small readers shared by the builders. They return nothing for a value of the wrong type.

pub(crate) fn str_at(node: Option<&Node>, key: &str) -> Option<Str> {
    node?.get(key).and_then(Str::from_node)
}

pub(crate) fn bool_at(node: Option<&Node>, key: &str) -> Option<Spanned<bool>> {
    let n = node?.get(key)?;
    Some(Spanned {
        value: n.as_bool()?,
        span: n.span,
    })
}

pub(crate) fn int_at(node: Option<&Node>, key: &str) -> Option<Spanned<i64>> {
    let n = node?.get(key)?;
    match n.value {
        Value::Int(i) => Some(Spanned {
            value: i,
            span: n.span,
        }),
        _ => None,
    }
}

/// A non-null node under `key`.
pub(crate) fn node_at(node: Option<&Node>, key: &str) -> Option<Node> {
    node?.get(key).filter(|n| !n.is_null()).cloned()
}

pub(crate) fn list_at<'a>(node: Option<&'a Node>, key: &str) -> &'a [Node] {
    node.and_then(|n| n.get(key))
        .and_then(Node::as_seq)
        .unwrap_or(&[])
}

pub(crate) fn strs_at(node: Option<&Node>, key: &str) -> Vec<Str> {
    list_at(node, key)
        .iter()
        .filter_map(Str::from_node)
        .collect()
}

/// The span of the key `key` of a map node, for diagnostics about a field.
pub fn key_span(node: &Node, key: &str) -> Option<Span> {
    node.entry(key).map(|(k, _)| k.span)
}
