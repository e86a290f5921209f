//! Compiled policy bundles: the file `palisade compile` writes and `palisade serve` loads.
//!
//! A bundle holds the lowered IR of every policy together with what the webhook needs to know
//! about each policy (failure policy, timeouts, warnings, the kinds and operations it matches)
//! and a source map back to the YAML. Loading a bundle skips YAML parsing, checking, autogen and
//! pattern lowering, which is where compile time goes.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic            8 bytes   \x89PLB\r\n\x1a\n (binary marker, detects text-mode mangling)
//! format version   u32       FORMAT_VERSION; any other value is refused
//! stdlib ABI hash  32 bytes  sha256 of the stdlib function table and the IR version
//! payload length   u64
//! payload          MessagePack of [`Bundle`]
//! digest           32 bytes  sha256 of everything before it
//! ```
//!
//! The payload is MessagePack through serde: every IR type derives `Serialize`/`Deserialize`, so
//! a new rule kind or IR variant only needs the derive (and, when it holds a compiled artifact
//! such as a regex or CEL program, a representation as source text rebuilt on load, as
//! [`crate::ir::pattern::Const`] and `Wildcard` do). MessagePack is self-describing, which the
//! raw JSON fragments kept in the IR (preconditions, dynamic patterns) need. A change to the IR's
//! shape must bump [`IR_VERSION`]; it is part of the ABI hash, so old bundles are refused with a
//! clear message instead of being misread.
//!
//! Loading checks the magic, the format version, the length, the digest and the ABI hash before
//! decoding, then validates the decoded IR (every pattern id in range and acyclic), so a
//! truncated, corrupted or hostile bundle is an error, never a panic or a hang.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ir::cel::{
    BindingIr, CelPolicyIr, DeletingPolicyIr, GeneratingPolicyIr, ImageValidatingPolicyIr, MatchConstraints, MutatingPolicyIr,
};
use crate::ir::policy::{Check, PolicyIr, RuleBody};
use crate::source::SourceMap;
use crate::syntax::{self, Document, Node};
use crate::{Diagnostic, Severity};

pub const MAGIC: [u8; 8] = *b"\x89PLB\r\n\x1a\n";
/// The container format's version: the header layout above and the payload encoding.
pub const FORMAT_VERSION: u32 = 1;
/// The version of the IR's shape. Bump it whenever an IR type changes its fields or variants.
pub const IR_VERSION: u32 = 5;
/// Bundles larger than this are refused before reading the payload (a real set of a few
/// thousand policies is a few megabytes).
pub const MAX_BUNDLE_BYTES: u64 = 256 << 20;

const HEADER_LEN: usize = 8 + 4 + 32 + 8;
const DIGEST_LEN: usize = 32;

/// Everything a bundle holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bundle {
    /// The Palisade version that wrote the bundle, for messages.
    pub producer: String,
    pub policies: Vec<BundledPolicy>,
    /// The `policies.kyverno.io` and `admissionregistration.k8s.io` policies (and VAP bindings).
    #[serde(default)]
    pub cel: Vec<BundledCelPolicy>,
    /// Policies of kinds the compiler does not lower, named so that tools can say what is
    /// missing instead of dropping them silently.
    pub skipped: Vec<SkippedPolicy>,
}

/// A CEL policy in a bundle: what the webhook needs to know about it, its IR and its source.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundledCelPolicy {
    pub meta: PolicyMeta,
    pub ir: CelIr,
    pub source: PolicySource,
}

/// The lowered form of each CEL kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CelIr {
    /// ValidatingPolicy, NamespacedValidatingPolicy, ValidatingAdmissionPolicy.
    Validating(CelPolicyIr),
    Binding(BindingIr),
    /// MutatingPolicy, NamespacedMutatingPolicy, MutatingAdmissionPolicy.
    Mutating(MutatingPolicyIr),
    /// Boxed: it is the largest kind by far (image rules, attestors, attestations), and a
    /// bundle holds a vector of these. Serde encodes a box as its content, so the bundle
    /// format is unchanged.
    ImageValidating(Box<ImageValidatingPolicyIr>),
    Generating(GeneratingPolicyIr),
    Deleting(DeletingPolicyIr),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundledPolicy {
    pub meta: PolicyMeta,
    pub ir: PolicyIr,
    pub source: PolicySource,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SkippedPolicy {
    pub name: String,
    pub kind: String,
    pub file: String,
    pub line: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailurePolicy {
    Fail,
    Ignore,
}

impl FailurePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        }
    }
}

/// What the admission webhook needs to know about a policy besides its rules.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyMeta {
    pub name: String,
    /// `ClusterPolicy` or `Policy`.
    pub kind: String,
    pub namespace: Option<String>,
    /// `webhookConfiguration.failurePolicy`, else `spec.failurePolicy`, else `Fail`.
    pub failure_policy: FailurePolicy,
    /// `webhookConfiguration.timeoutSeconds`, else `spec.webhookTimeoutSeconds`.
    pub timeout_seconds: Option<u32>,
    pub emit_warning: bool,
    /// `spec.admission` (default true): whether the policy runs in the admission webhook at all.
    pub admission: bool,
    /// The resource kinds the rules match after autogen, as written (`Pod`, `apps/v1/Deployment`).
    pub kinds: Vec<String>,
    /// The operations the rules match; empty means Kyverno's default (CREATE, UPDATE, DELETE, CONNECT as matched).
    pub operations: Vec<String>,
    pub has_validate: bool,
    pub has_mutate: bool,
    pub has_generate: bool,
    pub has_verify_images: bool,
}

/// Where a policy and its rules were written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PolicySource {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// One entry per IR rule, autogen rules pointing at the rule they were generated from.
    pub rules: Vec<RuleSource>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RuleSource {
    pub name: String,
    pub line: u32,
    pub column: u32,
}

impl PolicySource {
    /// `file:line:column` of a rule, or of the policy when the rule is unknown.
    pub fn locate(&self, rule: &str) -> String {
        match self.rules.iter().find(|r| r.name == rule) {
            Some(r) => format!("{}:{}:{}", self.file, r.line, r.column),
            None => format!("{}:{}:{}", self.file, self.line, self.column),
        }
    }
}

/// Why a bundle could not be read. Each message says what is wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    NotABundle,
    Truncated { expected: u64, actual: u64 },
    TooLarge(u64),
    FormatVersion { found: u32 },
    AbiMismatch { found: String, expected: String },
    Digest { found: String, expected: String },
    Decode(String),
    Invalid(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::NotABundle => f.write_str("not a Palisade bundle (bad magic bytes); write one with `palisade compile`"),
            LoadError::Truncated { expected, actual } => {
                write!(f, "bundle is truncated: expected {expected} bytes, found {actual}")
            }
            LoadError::TooLarge(n) => write!(f, "bundle is {n} bytes, over the {MAX_BUNDLE_BYTES}-byte limit"),
            LoadError::FormatVersion { found } => write!(
                f,
                "bundle format version {found} is not supported (this palisade reads version {FORMAT_VERSION}); recompile the policies with this palisade"
            ),
            LoadError::AbiMismatch { found, expected } => write!(
                f,
                "bundle was compiled against a different stdlib/IR (ABI {found}, this palisade has {expected}); recompile the policies with this palisade"
            ),
            LoadError::Digest { found, expected } => {
                write!(f, "bundle content digest mismatch (stored {expected}, computed {found}): the file is corrupted")
            }
            LoadError::Decode(e) => write!(f, "bundle contents cannot be decoded: {e}"),
            LoadError::Invalid(e) => write!(f, "bundle contents are invalid: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// The hash that ties a bundle to the stdlib and IR it was compiled against: the IR version and
/// every function's name, dialect, signature and purity, in name order.
pub fn abi_hash() -> [u8; 32] {
    let mut lines: Vec<String> = palisade_stdlib::functions::all()
        .map(|f| format!("{}|{:?}|{:?}|{:?}|{:?}", f.name, f.dialect, f.params, f.returns, f.purity))
        .collect();
    lines.sort();
    let mut h = Sha256::new();
    h.update(format!("ir {IR_VERSION}\n").as_bytes());
    for line in lines {
        h.update(line.as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Bundle {
    /// Encodes the bundle into its file form.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let payload = rmp_serde::to_vec_named(self).map_err(|e| format!("cannot encode bundle: {e}"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + DIGEST_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&abi_hash());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&payload);
        let digest: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Reads a bundle, checking everything before trusting anything. Returns the bundle and its
    /// content digest (hex).
    pub fn decode(bytes: &[u8]) -> Result<(Bundle, String), LoadError> {
        if bytes.len() < MAGIC.len() || bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(LoadError::NotABundle);
        }
        let header = bytes.get(..HEADER_LEN).ok_or(LoadError::Truncated {
            expected: (HEADER_LEN + DIGEST_LEN) as u64,
            actual: bytes.len() as u64,
        })?;
        let (_, rest) = header.split_at(MAGIC.len());
        let (version, rest) = rest.split_at(4);
        let (abi, len) = rest.split_at(32);
        let version = u32::from_le_bytes(version.try_into().map_err(|_| LoadError::NotABundle)?);
        if version != FORMAT_VERSION {
            return Err(LoadError::FormatVersion { found: version });
        }
        let payload_len = u64::from_le_bytes(len.try_into().map_err(|_| LoadError::NotABundle)?);
        if payload_len > MAX_BUNDLE_BYTES {
            return Err(LoadError::TooLarge(payload_len));
        }
        let expected = HEADER_LEN as u64 + payload_len + DIGEST_LEN as u64;
        if (bytes.len() as u64) < expected {
            return Err(LoadError::Truncated { expected, actual: bytes.len() as u64 });
        }
        if (bytes.len() as u64) > expected {
            return Err(LoadError::Invalid(format!(
                "{} unexpected bytes after the digest",
                bytes.len() as u64 - expected
            )));
        }
        let body_end = HEADER_LEN + payload_len as usize;
        let (body, stored) = bytes.split_at(body_end);
        let computed: [u8; 32] = Sha256::digest(body).into();
        if computed != stored {
            return Err(LoadError::Digest { found: hex(&computed), expected: hex(stored) });
        }
        let ours = abi_hash();
        if abi != ours {
            return Err(LoadError::AbiMismatch { found: hex(abi), expected: hex(&ours) });
        }
        let payload = body.get(HEADER_LEN..).unwrap_or_default();
        let bundle: Bundle = rmp_serde::from_slice(payload).map_err(|e| LoadError::Decode(e.to_string()))?;
        bundle.validate()?;
        Ok((bundle, hex(&computed)))
    }

    /// Checks what the decoder cannot: every pattern is well-formed, so the interpreter can
    /// trust ids without looping.
    fn validate(&self) -> Result<(), LoadError> {
        for p in &self.policies {
            for rule in &p.ir.rules {
                if let RuleBody::Validate(v) = &rule.body && let Check::Pattern(pattern) = &v.check {
                    pattern.validate().map_err(|e| {
                        LoadError::Invalid(format!("policy {} rule {}: {e}", p.meta.name, rule.name))
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Serde helper for `&'static str` fields of the IR (names of unsupported rule kinds): the
/// compiler writes string literals there, and a decoded bundle brings back the same few names.
/// Each distinct name is leaked once and reused afterwards, so reloading a bundle many times does
/// not grow memory.
pub fn static_str<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<&'static str, D::Error> {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let text = String::deserialize(deserializer)?;
    let mut names = NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.get(text.as_str()) {
        return Ok(known);
    }
    if names.len() >= 1024 {
        return Err(serde::de::Error::custom("too many distinct unsupported rule kinds in bundle"));
    }
    let leaked: &'static str = Box::leak(text.into_boxed_str());
    names.insert(leaked);
    Ok(leaked)
}

/// One input file of [`compile`].
pub struct Input {
    pub name: String,
    pub text: String,
    /// Named by the user rather than found in a folder: syntax errors are reported even when
    /// the file holds no policy (a folder's broken test fixtures are not the compiler's business).
    pub explicit: bool,
}

/// The result of [`compile`]: the bundle (when no error was found), every diagnostic, and the
/// sources they point into.
pub struct Compiled {
    pub bundle: Option<Bundle>,
    pub diagnostics: Vec<Diagnostic>,
    pub sources: SourceMap,
}

const KYVERNO_KINDS: [&str; 2] = ["ClusterPolicy", "Policy"];
const CEL_KINDS: [&str; 8] = [
    "ValidatingPolicy",
    "NamespacedValidatingPolicy",
    "ImageValidatingPolicy",
    "MutatingPolicy",
    "GeneratingPolicy",
    "DeletingPolicy",
    "ValidatingAdmissionPolicy",
    "MutatingAdmissionPolicy",
];

fn is_binding_document(doc: &Document) -> bool {
    doc.root.get("kind").and_then(Node::as_str) == Some("ValidatingAdmissionPolicyBinding")
        && doc.root.get("apiVersion").and_then(Node::as_str).is_some_and(|a| a.starts_with("admissionregistration.k8s.io/"))
}

/// Lowers a CEL policy document; `None` for kinds without a lowering.
fn lower_cel(doc: &Value) -> Option<Result<CelIr, String>> {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let base = kind.strip_prefix("Namespaced").unwrap_or(kind);
    let lowered = match base {
        "ValidatingPolicy" | "ValidatingAdmissionPolicy" => CelPolicyIr::lower(doc).map(CelIr::Validating),
        "MutatingPolicy" | "MutatingAdmissionPolicy" => MutatingPolicyIr::lower(doc).map(CelIr::Mutating),
        "ImageValidatingPolicy" => ImageValidatingPolicyIr::lower(doc).map(|p| CelIr::ImageValidating(Box::new(p))),
        "GeneratingPolicy" => GeneratingPolicyIr::lower(doc).map(CelIr::Generating),
        "DeletingPolicy" => DeletingPolicyIr::lower(doc).map(CelIr::Deleting),
        _ => return None,
    };
    Some(lowered.map_err(|e| e.0))
}

/// What the webhook needs to know about a CEL policy: its failure policy, timeout, whether it
/// runs at admission, and the resources and operations its match constraints name.
fn cel_meta(doc: &Value, ir: &CelIr) -> PolicyMeta {
    let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
    let failure = spec.get("failurePolicy").and_then(Value::as_str);
    let constraints: Option<&MatchConstraints> = match ir {
        CelIr::Validating(p) => p.variants.first().map(|v| &v.constraints),
        CelIr::Binding(_) => None,
        CelIr::Mutating(p) => Some(&p.constraints),
        CelIr::ImageValidating(p) => Some(&p.constraints),
        CelIr::Generating(p) => Some(&p.constraints),
        CelIr::Deleting(p) => Some(&p.constraints),
    };
    let mut kinds = Vec::new();
    let mut operations = Vec::new();
    for r in constraints.map(|c| c.resource_rules.as_slice()).unwrap_or_default() {
        for res in &r.resources {
            if !kinds.contains(res) {
                kinds.push(res.clone());
            }
        }
        for op in &r.operations {
            if !operations.contains(op) {
                operations.push(op.clone());
            }
        }
    }
    let admission = !matches!(ir, CelIr::Deleting(_) | CelIr::Binding(_))
        && spec.pointer("/evaluation/admission/enabled").and_then(Value::as_bool).unwrap_or(true);
    PolicyMeta {
        name: doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
        kind: doc.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned(),
        namespace: doc.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_owned),
        failure_policy: if failure == Some("Ignore") { FailurePolicy::Ignore } else { FailurePolicy::Fail },
        timeout_seconds: spec.pointer("/webhookConfiguration/timeoutSeconds").and_then(Value::as_u64).and_then(|t| u32::try_from(t).ok()),
        emit_warning: false,
        admission,
        kinds,
        operations,
        has_validate: matches!(ir, CelIr::Validating(_) | CelIr::ImageValidating(_)),
        has_mutate: matches!(ir, CelIr::Mutating(_)),
        has_generate: matches!(ir, CelIr::Generating(_)),
        has_verify_images: matches!(ir, CelIr::ImageValidating(_)),
    }
}

/// Whether a YAML document is a policy the compiler takes (other documents in policy folders,
/// such as test resources and kustomizations, are passed over).
pub fn is_policy_document(doc: &Document) -> bool {
    let kind = doc.root.get("kind").and_then(Node::as_str).unwrap_or_default();
    let api = doc.root.get("apiVersion").and_then(Node::as_str).unwrap_or_default();
    (api.starts_with("kyverno.io/") && KYVERNO_KINDS.contains(&kind))
        || ((api.starts_with("policies.kyverno.io/") || api.starts_with("admissionregistration.k8s.io/"))
            && CEL_KINDS.contains(&kind))
}

/// Compiles policy files into a bundle: parse, check, lower (autogen included), collect
/// metadata and the source map. Documents that are not policies are ignored. Any error
/// diagnostic (or a lowering failure, reported as one) means no bundle.
pub fn compile(inputs: &[Input]) -> Compiled {
    let mut sources = SourceMap::new();
    let mut diagnostics = Vec::new();
    let mut policies = Vec::new();
    let mut skipped = Vec::new();
    let mut cel = Vec::new();
    for input in inputs {
        let file = sources.add(input.name.clone(), input.text.as_str());
        let (docs, syntax_diags) = syntax::parse(file, &input.text);
        // VAP bindings ride along with the policies they bind (they are not policies the
        // checker knows).
        for doc in docs.iter().filter(|d| is_binding_document(d)) {
            let json = syntax::to_json(&doc.root);
            let line = sources.get(file).map(|f| f.line_col(doc.root.span.start).line).unwrap_or(1);
            let ir = CelIr::Binding(BindingIr::lower(&json));
            let source = PolicySource { file: input.name.clone(), line, column: 1, rules: Vec::new() };
            cel.push(BundledCelPolicy { meta: cel_meta(&json, &ir), ir, source });
        }
        let docs: Vec<Document> = docs.into_iter().filter(is_policy_document).collect();
        if input.explicit || !docs.is_empty() {
            diagnostics.extend(syntax_diags);
        }
        let (_, check_diags) = crate::check::check(&docs);
        diagnostics.extend(check_diags);
        for doc in &docs {
            let json = syntax::to_json(&doc.root);
            let kind = json.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
            let name = json.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let at = |node: &Node| {
                sources.get(file).map(|f| f.line_col(node.span.start))
            };
            let (line, column) = at(&doc.root).map(|lc| (lc.line, lc.column)).unwrap_or((1, 1));
            if !KYVERNO_KINDS.contains(&kind.as_str()) {
                let source = PolicySource { file: input.name.clone(), line, column, rules: Vec::new() };
                match lower_cel(&json) {
                    Some(Ok(ir)) => cel.push(BundledCelPolicy { meta: cel_meta(&json, &ir), ir, source }),
                    Some(Err(e)) => {
                        diagnostics.push(Diagnostic::error("P9001", doc.root.span, format!("policy {name} cannot be lowered: {e}")))
                    }
                    None => skipped.push(SkippedPolicy { name, kind, file: input.name.clone(), line }),
                }
                continue;
            }
            let ir = match PolicyIr::lower(&json) {
                Ok(ir) => ir,
                Err(e) => {
                    diagnostics.push(Diagnostic::error("P9001", doc.root.span, format!("policy {name} cannot be lowered: {e}")));
                    continue;
                }
            };
            let mut rule_spans = Vec::new();
            if let Some(rules) = doc.root.get("spec").and_then(|s| s.get("rules")).and_then(Node::as_seq) {
                for r in rules {
                    let rname = r.get("name").and_then(Node::as_str).unwrap_or_default().to_owned();
                    let (l, c) = at(r).map(|lc| (lc.line, lc.column)).unwrap_or((line, column));
                    rule_spans.push(RuleSource { name: rname, line: l, column: c });
                }
            }
            let rules = ir
                .rules
                .iter()
                .map(|r| {
                    let base = r.name.strip_prefix("autogen-cronjob-").or_else(|| r.name.strip_prefix("autogen-")).unwrap_or(&r.name);
                    let found = rule_spans.iter().find(|s| s.name == r.name).or_else(|| rule_spans.iter().find(|s| s.name == base));
                    let (l, c) = found.map(|s| (s.line, s.column)).unwrap_or((line, column));
                    RuleSource { name: r.name.clone(), line: l, column: c }
                })
                .collect();
            let meta = policy_meta(&json, &ir);
            let source = PolicySource { file: input.name.clone(), line, column, rules };
            policies.push(BundledPolicy { meta, ir, source });
        }
    }
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    let bundle = (!failed).then(|| Bundle { producer: env!("CARGO_PKG_VERSION").to_owned(), policies, cel, skipped });
    Compiled { bundle, diagnostics, sources }
}

fn policy_meta(doc: &Value, ir: &PolicyIr) -> PolicyMeta {
    let spec = doc.get("spec").cloned().unwrap_or(Value::Null);
    let failure = spec
        .pointer("/webhookConfiguration/failurePolicy")
        .or_else(|| spec.get("failurePolicy"))
        .and_then(Value::as_str);
    let failure_policy = if failure == Some("Ignore") { FailurePolicy::Ignore } else { FailurePolicy::Fail };
    let timeout_seconds = spec
        .pointer("/webhookConfiguration/timeoutSeconds")
        .or_else(|| spec.get("webhookTimeoutSeconds"))
        .and_then(Value::as_u64)
        .and_then(|t| u32::try_from(t).ok());
    let rules: Vec<Value> = spec.get("rules").and_then(Value::as_array).cloned().unwrap_or_default();
    let has = |field: &str| rules.iter().any(|r| r.get(field).is_some());
    let mut kinds = Vec::new();
    let mut operations = Vec::new();
    for rule in &ir.rules {
        for f in rule.matcher.any.iter().chain(&rule.matcher.all) {
            for k in &f.kinds {
                let text = [k.group.as_ref(), k.version.as_ref(), Some(&k.kind)]
                    .into_iter()
                    .flatten()
                    .map(|w| w.pattern().to_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let text = match &k.subresource {
                    Some(s) => format!("{text}/{}", s.pattern()),
                    None => text,
                };
                if !kinds.contains(&text) {
                    kinds.push(text);
                }
            }
            for op in &f.operations {
                if !operations.contains(op) {
                    operations.push(op.clone());
                }
            }
        }
    }
    PolicyMeta {
        name: ir.name.clone(),
        kind: doc.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned(),
        namespace: ir.namespace.clone(),
        failure_policy,
        timeout_seconds,
        emit_warning: spec.get("emitWarning").and_then(Value::as_bool).unwrap_or(false),
        admission: spec.get("admission").and_then(Value::as_bool).unwrap_or(true),
        kinds,
        operations,
        has_validate: has("validate"),
        has_mutate: has("mutate"),
        has_generate: has("generate"),
        has_verify_images: has("verifyImages"),
    }
}
