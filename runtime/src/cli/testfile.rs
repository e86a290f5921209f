//! `kyverno-test.yaml`: the test files `palisade test` runs, decoded strictly as Kyverno does.

use palisade_compiler::diagnostic::Diagnostic;
use palisade_compiler::source::Span;
use palisade_compiler::syntax::Node;

use super::strict::{self, Obj};

/// What a test expects of one policy rule on some resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedResult {
    pub policy: String,
    pub rule: Option<String>,
    /// The policy kinds a result can name instead of a rule (CEL policies).
    pub policy_kind: PolicyKindFlag,
    pub kind: String,
    /// Resource names, as `name` or `namespace/name`.
    pub resources: Vec<String>,
    pub result: String,
    pub patched_resources: Option<String>,
    pub generated_resource: Option<String>,
    pub clone_source_resource: Option<String>,
    /// The deprecated `namespace` field: the namespace of a namespaced policy.
    pub namespace: Option<String>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PolicyKindFlag {
    #[default]
    Kyverno,
    ValidatingAdmissionPolicy,
    MutatingAdmissionPolicy,
    ValidatingPolicy,
    MutatingPolicy,
    GeneratingPolicy,
    ImageValidatingPolicy,
    DeletingPolicy,
}

/// A decoded test file. Paths are as written, relative to the test file's folder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestFile {
    pub name: String,
    pub policies: Vec<String>,
    pub resources: Vec<String>,
    pub target_resources: Vec<String>,
    pub exceptions: Vec<String>,
    pub cluster_resources: Vec<String>,
    pub param_resources: Vec<String>,
    pub variables: Option<String>,
    pub userinfo: Option<String>,
    pub context: Option<String>,
    pub results: Vec<ExpectedResult>,
}

const TEST_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "policies",
    "resources",
    "targetResources",
    "exceptions",
    "clusterResources",
    "paramResources",
    "variables",
    "userinfo",
    "context",
    "results",
    "values",
    "checks",
    "jsonPayload",
    "apiCallResponses",
    "globalContextEntries",
];

const RESULT_FIELDS: &[&str] = &[
    "policy",
    "rule",
    "isValidatingAdmissionPolicy",
    "isMutatingAdmissionPolicy",
    "isValidatingPolicy",
    "isMutatingPolicy",
    "isGeneratingPolicy",
    "isImageValidatingPolicy",
    "isDeletingPolicy",
    "result",
    "status",
    "kind",
    "resources",
    "resource",
    "namespace",
    "resourceSpecs",
    "patchedResource",
    "patchedResources",
    "generatedResource",
    "cloneSourceResource",
];

impl TestFile {
    /// Decodes a test document. Errors are collected; what could be decoded is returned.
    pub fn decode(root: &Node, errors: &mut Vec<Diagnostic>) -> Option<TestFile> {
        let mut o = Obj::new(root, "the test file", errors)?;
        let mut t = TestFile::default();
        let _ = o.take("apiVersion");
        let _ = o.take("kind");
        if let Some(meta) = o.take("metadata") {
            t.name = meta.get("name").and_then(Node::as_str).unwrap_or_default().to_owned();
        }
        if let Some(name) = o.string("name", errors) && t.name.is_empty() {
            t.name = name;
        }
        t.policies = o.strings("policies", errors);
        t.resources = o.strings("resources", errors);
        t.target_resources = o.strings("targetResources", errors);
        t.exceptions = o.strings("exceptions", errors);
        t.cluster_resources = o.strings("clusterResources", errors);
        t.param_resources = o.strings("paramResources", errors);
        t.variables = o.string("variables", errors);
        t.userinfo = o.string("userinfo", errors);
        t.context = o.string("context", errors);
        for inline in ["values", "checks", "jsonPayload", "apiCallResponses", "globalContextEntries"] {
            let _ = o.take(inline);
        }
        if let Some(results) = o.take("results") {
            match results.as_seq() {
                Some(items) => t.results = items.iter().filter_map(|r| decode_result(r, errors)).collect(),
                None if results.is_null() => {}
                None => errors.push(Diagnostic::error(
                    strict::CODE,
                    results.span,
                    format!("`results` must be a list, found {}", results.type_name()),
                )),
            }
        }
        o.finish(TEST_FIELDS, errors);
        Some(t)
    }
}

fn decode_result(node: &Node, errors: &mut Vec<Diagnostic>) -> Option<ExpectedResult> {
    let mut o = Obj::new(node, "a test result", errors)?;
    let policy = o.string("policy", errors).unwrap_or_default();
    let rule = o.string("rule", errors);
    let flags = [
        ("isValidatingAdmissionPolicy", PolicyKindFlag::ValidatingAdmissionPolicy),
        ("isMutatingAdmissionPolicy", PolicyKindFlag::MutatingAdmissionPolicy),
        ("isValidatingPolicy", PolicyKindFlag::ValidatingPolicy),
        ("isMutatingPolicy", PolicyKindFlag::MutatingPolicy),
        ("isGeneratingPolicy", PolicyKindFlag::GeneratingPolicy),
        ("isImageValidatingPolicy", PolicyKindFlag::ImageValidatingPolicy),
        ("isDeletingPolicy", PolicyKindFlag::DeletingPolicy),
    ];
    let mut policy_kind = PolicyKindFlag::Kyverno;
    for (field, flag) in flags {
        if o.bool(field, errors) {
            policy_kind = flag;
        }
    }
    let result = o.string("result", errors).or_else(|| o.string("status", errors)).unwrap_or_default();
    let kind = o.string("kind", errors).unwrap_or_default();
    let mut resources = o.strings("resources", errors);
    if let Some(r) = o.string("resource", errors) {
        resources.push(r);
    }
    let namespace = o.string("namespace", errors);
    let _ = o.take("resourceSpecs");
    let patched_resources = o.string("patchedResources", errors).or_else(|| o.string("patchedResource", errors));
    let generated_resource = o.string("generatedResource", errors);
    let clone_source_resource = o.string("cloneSourceResource", errors);
    let span = node.span;
    o.finish(RESULT_FIELDS, errors);
    Some(ExpectedResult {
        policy,
        rule,
        policy_kind,
        kind,
        resources,
        result,
        patched_resources,
        generated_resource,
        clone_source_resource,
        namespace,
        span,
    })
}
