//! AdmissionReview v1 in, AdmissionReview v1 out: everything between the HTTP body and the
//! engine, with no HTTP in it (the server module owns that).
//!
//! The response follows Kyverno's admission handlers: the request's `uid` is echoed; a denial
//! carries Kyverno's block message (`resource Kind/ns/name was blocked due to the following
//! policies` and a YAML map policy -> rule -> message); warnings come from policies with
//! `emitWarning` and from rules whose failure is only audited, formatted `policy <p>.<r>: <msg>`;
//! a rule error blocks the request only where the policy's failurePolicy is `Fail`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Map, Value};

use palisade_compiler::bundle::FailurePolicy;

use super::engine::{Endpoint, EndpointPolicy, Engine};
use crate::set::Review;
use crate::engine::{self as rules, Request, RuleResult, Status, UserInfo};

/// Why a body is not an AdmissionReview the server can answer. Each maps to an HTTP 400.
#[derive(Debug, PartialEq, Eq)]
pub struct BadRequest(pub String);

/// A parsed admission request, owning its objects.
pub struct Admission {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: String,
    pub dry_run: bool,
    pub object: Value,
    pub old_object: Option<Value>,
    pub user: UserInfo,
}

/// Parses and checks an AdmissionReview body. JSON nesting is bounded by serde_json's
/// recursion limit, so a deeply nested body is an error here, not a stack overflow.
pub fn parse(body: &[u8]) -> Result<Admission, BadRequest> {
    let mut review: Value =
        serde_json::from_slice(body).map_err(|e| BadRequest(format!("the body is not valid JSON: {e}")))?;
    let api = review.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let kind = review.get("kind").and_then(Value::as_str).unwrap_or_default();
    if api != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        return Err(BadRequest(format!(
            "expected an admission.k8s.io/v1 AdmissionReview, got apiVersion {api:?} kind {kind:?}"
        )));
    }
    let Some(Value::Object(request)) = review.get_mut("request").map(Value::take) else {
        return Err(BadRequest("the AdmissionReview has no request object".into()));
    };
    let mut request = request;
    let text = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let uid = text(&request, "uid");
    if uid.is_empty() {
        return Err(BadRequest("the AdmissionReview request has no uid".into()));
    }
    let operation = text(&request, "operation");
    if !matches!(operation.as_str(), "CREATE" | "UPDATE" | "DELETE" | "CONNECT") {
        return Err(BadRequest(format!("unknown request operation {operation:?}")));
    }
    let namespace = text(&request, "namespace");
    let take_object = |request: &mut Map<String, Value>, key: &str| match request.remove(key) {
        Some(Value::Null) | None => None,
        Some(v) => Some(v),
    };
    let mut object = take_object(&mut request, "object");
    let mut old_object = take_object(&mut request, "oldObject");
    // The API server sets the namespace on namespaced objects before admission; a hand-made
    // review may not, so the request's namespace fills the gap.
    for o in [object.as_mut(), old_object.as_mut()].into_iter().flatten() {
        fill_namespace(o, &namespace);
    }
    if operation == "DELETE" && old_object.is_none() {
        return Err(BadRequest("a DELETE request needs oldObject".into()));
    }
    let object = object.or_else(|| old_object.clone()).unwrap_or(Value::Null);
    if !object.is_object() {
        return Err(BadRequest("the request has no object".into()));
    }
    let kind = request
        .get("kind")
        .and_then(|k| k.get("kind"))
        .and_then(Value::as_str)
        .or_else(|| object.get("kind").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| text(&request, "name"));
    let user_info = request.get("userInfo");
    let user = UserInfo {
        username: user_info.and_then(|u| u.get("username")).and_then(Value::as_str).unwrap_or_default().to_owned(),
        groups: user_info
            .and_then(|u| u.get("groups"))
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        roles: Vec::new(),
        cluster_roles: Vec::new(),
    };
    let dry_run = request.get("dryRun").and_then(Value::as_bool).unwrap_or(false);
    Ok(Admission { uid, kind, namespace, name, operation, dry_run, object, old_object, user })
}

fn fill_namespace(object: &mut Value, namespace: &str) {
    if namespace.is_empty() {
        return;
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("namespace").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        meta.insert("namespace".into(), Value::String(namespace.to_owned()));
    }
}

/// What a refused review says.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// A text as it is: an evaluation error, the CEL kinds' denials.
    Text(String),
    /// Kyverno's block message, kept as its parts: the response writes it JSON-escaped straight
    /// into its buffer ([`response_bytes`]), with no text in between.
    Blocked(Denial),
}

/// The parts of Kyverno's block message (see [`block_message`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Denial {
    pub kind: String,
    /// The object's own namespace.
    pub namespace: String,
    pub name: String,
    /// Policy -> rule -> message of the rules that block.
    pub failures: Blocked,
}

impl Message {
    /// The message as the response carries it.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Message::Text(text) => std::borrow::Cow::Borrowed(text),
            Message::Blocked(d) => std::borrow::Cow::Owned(block_message(&d.kind, &d.namespace, &d.name, &d.failures)),
        }
    }
}

/// The outcome of one review.
pub struct Verdict {
    pub allowed: bool,
    pub message: Option<Message>,
    pub warnings: Vec<String>,
    /// A JSON Patch (RFC 6902) for mutate endpoints, when there is one.
    pub patch: Option<Vec<u8>>,
    /// The rule results for metrics that are not counted yet: every one on the general path;
    /// on the compiled path only those the engine has no counts for (all of them when the
    /// engine was built without [`Engine::with_metrics`]).
    pub results: Vec<RuleResult>,
    /// Set when evaluation itself failed (deadline, internal error); the verdict then follows
    /// the endpoint's failure policy.
    pub error: Option<String>,
}

/// Evaluates one admission against the policies of an endpoint, checking the deadline between
/// policies (a single policy's evaluation is bounded by the IR's depth and size limits).
pub fn review(engine: &Engine, endpoint: Endpoint, adm: &Admission, deadline: Instant) -> Verdict {
    if endpoint.is_cel() {
        return super::cel::review(engine, endpoint, adm, deadline, None);
    }
    if endpoint.is_mutate() {
        return mutate(engine, endpoint, adm, deadline);
    }
    let policies = engine.policies(endpoint);
    let mut results = Vec::new();
    let mut blocked: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut warnings = Vec::new();
    let req = Request {
        operation: &adm.operation,
        object: &adm.object,
        old_object: adm.old_object.as_ref(),
        user: &adm.user,
        namespace_labels: None,
        variables: &[],
        rule_variables: None,
    };
    let mut block = false;
    for policy in policies {
        if Instant::now() >= deadline {
            return failed(endpoint, results, warnings, "evaluation did not finish within the request deadline".into());
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rules::evaluate(&policy.ir, &req)));
        let Ok(policy_results) = outcome else {
            return failed(endpoint, results, warnings, format!("internal error while evaluating policy {}", policy.meta.name));
        };
        tally(policy, &policy_results, &mut block, &mut blocked, &mut warnings);
        results.extend(policy_results);
    }
    if let Some((verifier, image_policies)) = engine.image_policies(endpoint) {
        let phase = super::images::validate(verifier, image_policies, adm);
        block |= !phase.blocked.is_empty();
        merge(&mut blocked, phase.blocked);
        warnings.extend(phase.warnings);
        results.extend(phase.results);
    }
    validate_verdict(adm, &resource_namespace(adm), block, blocked, warnings, results)
}

/// `namespace` is the object's own (the block message names the resource by it).
fn validate_verdict(adm: &Admission, namespace: &str, block: bool, blocked: Blocked, warnings: Vec<String>, results: Vec<RuleResult>) -> Verdict {
    if block {
        let denial = Denial { kind: adm.kind.clone(), namespace: namespace.to_owned(), name: adm.name.clone(), failures: blocked };
        return Verdict { allowed: false, message: Some(Message::Blocked(denial)), warnings, patch: None, results, error: None };
    }
    Verdict { allowed: true, message: None, warnings, patch: None, results, error: None }
}

/// Policy -> rule -> message of the rules that block (or would, if enforced).
type Blocked = BTreeMap<String, BTreeMap<String, String>>;

/// Folds one policy's validate results into the verdict: a failure blocks when the rule is
/// enforced, an error when the policy's failurePolicy is `Fail`; what does not block (and, with
/// `emitWarning`, what does) becomes a warning.
fn tally(policy: &EndpointPolicy, policy_results: &[RuleResult], block: &mut bool, blocked: &mut Blocked, warnings: &mut Vec<String>) {
    let mut reasons = BTreeMap::new();
    for r in policy_results {
        tally_one(policy, &r.policy, &r.rule, r.status, &r.message, r.enforce, &mut reasons, block, warnings);
    }
    if !reasons.is_empty() {
        blocked.insert(policy.meta.name.clone(), reasons);
    }
}

/// One result of [`tally`]; `policy_name` is the name the result carries (the warning's).
#[allow(clippy::too_many_arguments)]
fn tally_one(
    policy: &EndpointPolicy,
    policy_name: &str,
    rule: &str,
    status: Status,
    message: &str,
    enforce: bool,
    reasons: &mut BTreeMap<String, String>,
    block: &mut bool,
    warnings: &mut Vec<String>,
) {
    if !matches!(status, Status::Fail | Status::Error) {
        return;
    }
    let blocks = (status == Status::Fail && enforce) || (status == Status::Error && policy.meta.failure_policy == FailurePolicy::Fail);
    *block |= blocks;
    if message != "preconditions not met" {
        reasons.insert(rule.to_owned(), message.to_owned());
    }
    if policy.meta.emit_warning || !blocks {
        // Written piece by piece into a string of the right size: a resource that fails many
        // audited rules gets kilobytes of warnings.
        let mut warning = String::with_capacity(9 + policy_name.len() + rule.len() + message.len());
        for piece in ["policy ", policy_name, ".", rule, ": ", message] {
            warning.push_str(piece);
        }
        warnings.push(warning);
    }
}

thread_local! {
    /// The compiled path's result buffer, one per worker thread and reused by every request the
    /// thread answers (evaluation runs inline on the worker, never across an await).
    static SET_RESULTS: std::cell::RefCell<Vec<crate::set::SetResult>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Answers a validate review straight from its bytes through the endpoint's compiled set: the
/// body is parsed once into the matching document, only the rules the kind index selects run,
/// and natively compiled rules that pass build no `Value` at all. The verdict is the same as
/// [`review`]'s (the set engine's results are the interpreter's, checked by the agreement
/// tests). `None` means the request takes the general path: the endpoint has no compiled set,
/// the body is malformed (the general parser words the error), or the object lacks the
/// namespace the request carries (the general path fills it in).
pub fn review_compiled(engine: &Engine, endpoint: Endpoint, body: &[u8], deadline: Instant) -> Option<(Admission, Verdict)> {
    let set = engine.compiled(endpoint)?;
    // verifyImages checks read the object as a `Value`, which the general path builds.
    if engine.image_policies(endpoint).is_some() {
        return None;
    }
    let review = Review::parse(body, set).ok()?;
    let doc = &review.doc;
    let root = doc.root();
    if doc.get_str(root, &["apiVersion"]) != Some("admission.k8s.io/v1") || doc.get_str(root, &["kind"]) != Some("AdmissionReview") {
        return None;
    }
    let request = doc.get(root, "request")?;
    let text = |keys: &[&str]| doc.get_str(request, keys).unwrap_or_default().to_owned();
    if review.uid.is_empty() || !matches!(review.operation.as_str(), "CREATE" | "UPDATE" | "DELETE" | "CONNECT") {
        return None;
    }
    if review.operation == "DELETE" && review.old_object.is_none() {
        return None;
    }
    let namespace = text(&["namespace"]);
    let object = review.object;
    let object_ns = doc.get_str(object, &["metadata", "namespace"]).unwrap_or_default();
    if object_ns.is_empty() && !namespace.is_empty() {
        return None;
    }
    let kind = doc
        .get_str(request, &["kind", "kind"])
        .or_else(|| doc.get_str(object, &["kind"]))
        .unwrap_or_default()
        .to_owned();
    let name = doc.get_str(object, &["metadata", "name"]).map(str::to_owned).unwrap_or_else(|| text(&["name"]));
    let dry_run = doc.get(request, "dryRun").is_some_and(|n| doc.node(n).tag == crate::doc::TAG_TRUE);
    let adm = Admission {
        uid: review.uid.clone(),
        kind,
        namespace,
        name,
        operation: review.operation.clone(),
        dry_run,
        object: Value::Null,
        old_object: None,
        user: review.user.clone(),
    };
    // The buffer is taken out for the evaluation and put back after, so a panic inside loses
    // it and nothing else.
    let mut out = SET_RESULTS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    out.clear();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| set.evaluate(&review.request(), &mut out)));
    if outcome.is_err() {
        return Some((adm, failed(endpoint, Vec::new(), Vec::new(), "internal error while evaluating the policies".into())));
    }
    if Instant::now() >= deadline {
        return Some((adm, failed(endpoint, Vec::new(), Vec::new(), "evaluation did not finish within the request deadline".into())));
    }
    let policies = engine.policies(endpoint);
    let irs = set.policies();
    let mut results = Vec::new();
    let (mut block, mut blocked, mut warnings) = (false, Blocked::new(), Vec::new());
    // Results come out policy by policy, in order. They are counted and judged as the set
    // engine returns them: a pass (most results) costs an atomic add and nothing more.
    let mut rest = out.as_slice();
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|r| r.policy == first.policy).count();
        let (group, tail) = rest.split_at(n);
        rest = tail;
        let Some(policy) = policies.get(first.policy as usize) else { continue };
        let name = irs.get(first.policy as usize).map_or("", |p| p.name.as_str());
        let mut reasons = BTreeMap::new();
        for r in group {
            let rule = policy.ir.rules.get(r.rule as usize);
            // A result the engine cannot place is counted by name like the general path's.
            if rule.is_none() || !engine.count(endpoint, r.policy as usize, r.rule as usize, r.status) {
                results.push(set.rule_result(r));
            }
            if matches!(r.status, Status::Fail | Status::Error) {
                let full;
                let (rule, message) = match (rule, r.message.text()) {
                    (Some(rule), Some(m)) => (rule.name.as_str(), m),
                    _ => {
                        full = set.rule_result(r);
                        (full.rule.as_str(), full.message.as_str())
                    }
                };
                tally_one(policy, name, rule, r.status, message, r.enforce, &mut reasons, &mut block, &mut warnings);
            }
        }
        if !reasons.is_empty() {
            blocked.insert(policy.meta.name.clone(), reasons);
        }
    }
    out.clear();
    SET_RESULTS.with(|b| *b.borrow_mut() = out);
    let verdict = validate_verdict(&adm, object_ns, block, blocked, warnings, results);
    Some((adm, verdict))
}

/// The mutating webhook: every policy's mutate rules in turn, each policy seeing the object as
/// the ones before it left it (as Kyverno chains them), and the whole change as one JSON Patch.
/// A rule that fails or errors blocks under the `Fail` policy, with the same message format.
fn mutate(engine: &Engine, endpoint: Endpoint, adm: &Admission, deadline: Instant) -> Verdict {
    let mut current = adm.object.clone();
    let mut results = Vec::new();
    let mut warnings = Vec::new();
    let mut blocked: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for policy in engine.policies(endpoint) {
        if Instant::now() >= deadline {
            return failed(endpoint, results, warnings, "evaluation did not finish within the request deadline".into());
        }
        let req = Request {
            operation: &adm.operation,
            object: &current,
            old_object: adm.old_object.as_ref(),
            user: &adm.user,
            namespace_labels: None,
            variables: &[],
            rule_variables: None,
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::mutate::mutate(&policy.ir, &req)));
        let Ok(m) = outcome else {
            return failed(endpoint, results, warnings, format!("internal error while mutating with policy {}", policy.meta.name));
        };
        let mut reasons = BTreeMap::new();
        for r in &m.results {
            if matches!(r.status, Status::Fail | Status::Error) {
                reasons.insert(r.rule.clone(), r.message.clone());
                if policy.meta.emit_warning || policy.meta.failure_policy == FailurePolicy::Ignore {
                    warnings.push(format!("policy {}.{}: {}", r.policy, r.rule, r.message));
                }
            } else if policy.meta.emit_warning && r.status == Status::Pass {
                warnings.push(format!("policy {}.{}: {}", r.policy, r.rule, r.message));
            }
        }
        if !reasons.is_empty() && policy.meta.failure_policy == FailurePolicy::Fail {
            blocked.insert(policy.meta.name.clone(), reasons);
        }
        current = m.patched;
        results.extend(m.results);
    }
    // Image verification runs after every mutation, on the mutated object, as in Kyverno.
    if let Some((verifier, image_policies)) = engine.image_policies(endpoint) {
        let phase = super::images::verify(verifier, image_policies, adm, &mut current, deadline);
        merge(&mut blocked, phase.blocked);
        warnings.extend(phase.warnings);
        results.extend(phase.results);
    }
    if !blocked.is_empty() {
        let denial = Denial { kind: adm.kind.clone(), namespace: resource_namespace(adm), name: adm.name.clone(), failures: blocked };
        return Verdict { allowed: false, message: Some(Message::Blocked(denial)), warnings, patch: None, results, error: None };
    }
    let ops = crate::mutate::jsonpatch::diff(&adm.object, &current);
    let patch = if ops.is_empty() { None } else { serde_json::to_vec(&ops).ok() };
    Verdict { allowed: true, message: None, warnings, patch, results, error: None }
}

/// Adds the blocked rules of one phase to those of another, per policy.
fn merge(into: &mut BTreeMap<String, BTreeMap<String, String>>, from: BTreeMap<String, BTreeMap<String, String>>) {
    for (policy, rules) in from {
        into.entry(policy).or_default().extend(rules);
    }
}

fn resource_namespace(adm: &Admission) -> String {
    rules::namespace_of(&adm.object).map(str::to_owned).unwrap_or_default()
}

/// A verdict for an evaluation that could not finish: the endpoint's failure policy decides.
fn failed(endpoint: Endpoint, results: Vec<RuleResult>, mut warnings: Vec<String>, error: String) -> Verdict {
    match endpoint.failure_policy() {
        FailurePolicy::Fail => Verdict { allowed: false, message: Some(Message::Text(error.clone())), warnings, patch: None, results, error: Some(error) },
        FailurePolicy::Ignore => {
            warnings.push(format!("palisade: {error}; allowed because the failure policy is Ignore"));
            Verdict { allowed: true, message: None, warnings, patch: None, results, error: Some(error) }
        }
    }
}

/// The verdict for a request that cannot be evaluated at all (no engine loaded yet).
pub fn unavailable(endpoint: Endpoint, error: String) -> Verdict {
    failed(endpoint, Vec::new(), Vec::new(), error)
}

/// The AdmissionReview response body, as a value (see [`response_bytes`]).
pub fn response(uid: &str, verdict: &Verdict) -> Value {
    serde_json::from_slice(&response_bytes(uid, verdict)).unwrap_or(Value::Null)
}

/// The AdmissionReview response body, written directly: `uid`, `allowed`, and where there are
/// any the denial `status`, the `warnings`, and the base64 JSON Patch with its `patchType`. A
/// block message is written JSON-escaped straight into the body ([`write_block_message`]); the
/// bytes are those of [`crate::set::response_json`] on its text (pinned by a test).
pub fn response_bytes(uid: &str, verdict: &Verdict) -> Vec<u8> {
    let (warnings, patch) = (&verdict.warnings, verdict.patch.as_deref());
    match &verdict.message {
        None => crate::set::response_json_with(uid, verdict.allowed, None, warnings, patch),
        Some(Message::Text(text)) => crate::set::response_json(uid, verdict.allowed, Some(text), warnings, patch),
        Some(Message::Blocked(d)) => {
            // Escaping may lengthen the text a little (its line breaks become `\n`).
            let size = block_message_size(&d.kind, &d.namespace, &d.name, &d.failures) * 17 / 16;
            let write = |out: &mut Vec<u8>| write_block_message(&mut JsonText(out), &d.kind, &d.namespace, &d.name, &d.failures);
            crate::set::response_json_with(uid, verdict.allowed, Some((size, &write)), warnings, patch)
        }
    }
}

/// Where denial text goes: a `String` takes it as it is, [`JsonText`] JSON-escaped.
pub trait TextSink {
    fn push_str(&mut self, s: &str);
    fn push(&mut self, c: char);
}

impl TextSink for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }
    fn push(&mut self, c: char) {
        String::push(self, c);
    }
}

/// The inside of a JSON string literal being written into a buffer: text goes in escaped as
/// serde_json escapes it ([`crate::json_text`]).
pub struct JsonText<'a>(pub &'a mut Vec<u8>);

impl TextSink for JsonText<'_> {
    fn push_str(&mut self, s: &str) {
        crate::json_text::write_escaped(self.0, s);
    }
    fn push(&mut self, c: char) {
        match c {
            '\n' => self.0.extend_from_slice(b"\\n"),
            ' ' | '\'' | ':' => self.0.push(c as u8),
            _ => crate::json_text::write_escaped(self.0, c.encode_utf8(&mut [0; 4])),
        }
    }
}

/// Kyverno's denial text: a header naming the resource, then the failures as YAML (keys sorted,
/// as Go marshals maps). The text runs to kilobytes for a resource that fails many rules, so it
/// is written into one buffer sized up front. (The webhook writes it straight into the response
/// instead, through [`write_block_message`].)
pub fn block_message(kind: &str, namespace: &str, name: &str, failures: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    let mut out = String::with_capacity(block_message_size(kind, namespace, name, failures));
    write_block_message(&mut out, kind, namespace, name, failures);
    out
}

/// About the size of [`block_message`]'s text: each scalar may gain quotes and, per folded line,
/// the indentation of the next one; a sixteenth of its length covers that for lines of eighty
/// columns and the odd doubled quote.
fn block_message_size(kind: &str, namespace: &str, name: &str, failures: &Blocked) -> usize {
    let scalar = |s: &String| s.len() + 2 + s.len() / 16;
    BLOCK_HEAD.len() + kind.len() + namespace.len() + name.len() + 2 + BLOCK_TAIL.len()
        + failures.iter().map(|(p, rules)| scalar(p) + 2 + rules.iter().map(|(r, m)| 5 + scalar(r) + scalar(m)).sum::<usize>()).sum::<usize>()
}

const BLOCK_HEAD: &str = "\n\nresource ";
const BLOCK_TAIL: &str = " was blocked due to the following policies \n\n";

/// Writes [`block_message`]'s text into `out`.
pub fn write_block_message<S: TextSink>(out: &mut S, kind: &str, namespace: &str, name: &str, failures: &Blocked) {
    out.push_str(BLOCK_HEAD);
    out.push_str(kind);
    out.push('/');
    out.push_str(namespace);
    out.push('/');
    out.push_str(name);
    out.push_str(BLOCK_TAIL);
    // A rule's key is written on its own first, short as it is, so the column its message
    // starts at is counted in characters of the text (not of the escaped output).
    let mut key = String::new();
    for (policy, rules) in failures {
        yaml_value(out, policy, 0, 2);
        out.push_str(":\n");
        for (rule, message) in rules {
            key.clear();
            key.push_str("  ");
            yaml_value(&mut key, rule, 2, 4);
            key.push_str(": ");
            out.push_str(&key);
            yaml_value(out, message, key.chars().count(), 4);
            out.push('\n');
        }
    }
}

/// The width at which the Go YAML emitter folds long scalars.
const BEST_WIDTH: usize = 80;

/// `0x01` in every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte of a word.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether every byte of the text is printable ASCII (0x20..=0x7E): no control character, no
/// DEL, nothing beyond ASCII. Eight bytes at a time; a word passes when no byte is below 0x20
/// (subtracting 0x20 from each would borrow) and none above 0x7E (adding 1 would reach the high
/// bit, or it is set already). Denial text is nearly always printable ASCII.
fn printable_ascii(bytes: &[u8]) -> bool {
    let chunks = bytes.chunks_exact(8);
    let tail = chunks.remainder();
    let word_ok = |w: u64| ((w.wrapping_sub(ONES * 0x20) & !w) | w.wrapping_add(ONES) | w) & HIGHS == 0;
    chunks.map(|c| c.try_into().map_or(0, u64::from_le_bytes)).all(word_ok) && tail.iter().all(|&b| (0x20..0x7f).contains(&b))
}

thread_local! {
    /// A quoted scalar's text with its quotes doubled, reused by the thread's next one.
    static DOUBLED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// One scalar as Go's YAML emitter writes it, appended to `out`: plain when that reads back as
/// the same string, else single-quoted (`''` for a quote), else double-quoted for text with line
/// breaks or control characters. Plain and single-quoted scalars fold at a space once the line
/// passes [`BEST_WIDTH`], continuing on a new line indented by `indent`; `column` is where the
/// scalar starts.
fn yaml_value<S: TextSink>(out: &mut S, text: &str, column: usize, indent: usize) {
    let bytes = text.as_bytes();
    let ascii = printable_ascii(bytes);
    // `char::is_control`: C0 controls, DEL, and the C1 controls (U+0080..U+009F, two bytes).
    if !ascii && (bytes.iter().any(|&b| b < 0x20 || b == 0x7f) || bytes.windows(2).any(|w| matches!(w, [0xC2, 0x80..=0x9F]))) {
        let mut quoted = String::with_capacity(text.len() + 8);
        crate::json_text::push(&mut quoted, text);
        out.push_str(&quoted);
        return;
    }
    let quoted = !plain_allowed(text);
    let mut col = column;
    if quoted {
        out.push('\'');
        col += 1;
    }
    // A space folds when the line has passed the width, it is not the first character, and
    // neither neighbour is a space. ASCII text, nearly all of it, has its quotes doubled first
    // (which moves no space next to another), after which the column of a byte is its offset
    // and folding jumps straight to where a line can fold; other text takes one pass over its
    // bytes.
    if ascii {
        if quoted && bytes.contains(&b'\'') {
            DOUBLED.with(|d| {
                let Ok(mut doubled) = d.try_borrow_mut() else { return fold_ascii(out, &text.replace('\'', "''"), col, indent) };
                doubled.clear();
                let mut pieces = text.split('\'');
                doubled.push_str(pieces.next().unwrap_or_default());
                for piece in pieces {
                    doubled.push_str("''");
                    doubled.push_str(piece);
                }
                fold_ascii(out, &doubled, col, indent);
            });
        } else {
            fold_ascii(out, text, col, indent);
        }
        if quoted {
            out.push('\'');
        }
        return;
    }
    // Runs of text are copied whole; the column counts characters, that is bytes that do not
    // continue a UTF-8 sequence.
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b' ' => {
                let prev_space = i > 0 && bytes.get(i - 1) == Some(&b' ');
                let next_space = bytes.get(i + 1).is_none_or(|&n| n == b' ');
                if !prev_space && col > BEST_WIDTH && i > 0 && !next_space {
                    out.push_str(text.get(start..i).unwrap_or_default());
                    out.push('\n');
                    push_spaces(out, indent);
                    col = indent;
                    start = i + 1;
                } else {
                    col += 1;
                }
            }
            b'\'' if quoted => {
                out.push_str(text.get(start..=i).unwrap_or_default());
                out.push('\'');
                col += 2;
                start = i + 1;
            }
            _ => col += usize::from(b & 0xC0 != 0x80),
        }
    }
    out.push_str(text.get(start..).unwrap_or_default());
    if quoted {
        out.push('\'');
    }
}

/// [`yaml_value`]'s folding for ASCII text (its quotes already doubled), where the column of a
/// byte is its offset from the line's start plus that start's column.
fn fold_ascii<S: TextSink>(out: &mut S, text: &str, column: usize, indent: usize) {
    let bytes = text.as_bytes();
    let (mut start, mut col) = (0, column);
    loop {
        // The first byte whose column is past the width; no space before it folds.
        let mut i = (start + (BEST_WIDTH + 1).saturating_sub(col)).max(1);
        let mut fold = None;
        while let Some(k) = bytes.get(i..).and_then(|rest| rest.iter().position(|&b| b == b' ')) {
            let at = i + k;
            let prev_space = bytes.get(at - 1) == Some(&b' ');
            let next_space = bytes.get(at + 1).is_none_or(|&n| n == b' ');
            if !prev_space && !next_space {
                fold = Some(at);
                break;
            }
            i = at + 1;
        }
        let Some(at) = fold else {
            out.push_str(text.get(start..).unwrap_or_default());
            return;
        };
        out.push_str(text.get(start..at).unwrap_or_default());
        out.push('\n');
        push_spaces(out, indent);
        start = at + 1;
        col = indent;
    }
}

/// Appends `n` spaces (a folded line's indentation).
fn push_spaces<S: TextSink>(out: &mut S, n: usize) {
    const SPACES: &str = "                                ";
    match SPACES.get(..n) {
        Some(spaces) => out.push_str(spaces),
        None => (0..n).for_each(|_| out.push(' ')),
    }
}

/// Whether Go's YAML emitter writes the string plain: it must not be empty, start or end with a
/// space, start with an indicator, contain `: ` or ` #`, end with `:`, or read as another type.
fn plain_allowed(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else { return false };
    if first == b' ' || last == b' ' || last == b':' {
        return false;
    }
    // The indicators are all ASCII, so a first byte that is not one starts no indicator.
    if b"-?:,[]{}#&*!|>'\"%@`".contains(&first) {
        return false;
    }
    if text.contains(": ") || text.contains(" #") {
        return false;
    }
    // The longest special word has five letters; only a sign, a digit, a dot or the start of
    // `inf`/`nan` can begin a float.
    let special = ["true", "false", "null", "~", "yes", "no", "on", "off", "y", "n", ".inf", "-.inf", ".nan"];
    if text.len() <= 5 && special.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        return false;
    }
    if b"+.0123456789iInN".contains(&first) && text.parse::<f64>().is_ok() {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(policy: &str, rule: &str, message: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        BTreeMap::from([(policy.to_owned(), BTreeMap::from([(rule.to_owned(), message.to_owned())]))])
    }

    #[test]
    fn block_message_folds_like_kyverno() {
        // A denial Kyverno printed for a real cluster (from a public issue), reproduced byte for byte.
        let msg = block_message(
            "Deployment",
            "default",
            "inflate",
            &one(
                "require-labels",
                "autogen-check-for-labels",
                "validation error: The label `app.kubernetes.io/name` is required. Rule autogen-check-for-labels failed at path /spec/template/metadata/labels/app.kubernetes.io/name/",
            ),
        );
        assert_eq!(
            msg,
            "\n\nresource Deployment/default/inflate was blocked due to the following policies \n\nrequire-labels:\n  autogen-check-for-labels: 'validation error: The label `app.kubernetes.io/name`\n    is required. Rule autogen-check-for-labels failed at path /spec/template/metadata/labels/app.kubernetes.io/name/'\n"
        );
    }

    fn scalar(text: &str, column: usize) -> String {
        let mut out = String::new();
        yaml_value(&mut out, text, column, 4);
        out
    }

    #[test]
    fn scalars_quote_only_when_needed() {
        assert_eq!(scalar("latest tag is not allowed", 20), "latest tag is not allowed");
        assert_eq!(scalar("it's: here", 0), "'it''s: here'");
        assert_eq!(scalar("true", 0), "'true'");
        assert_eq!(scalar("", 0), "''");
        assert_eq!(scalar("a\nb", 0), "\"a\\nb\"");
        // Folding counts characters, not bytes, and never breaks at a run of spaces.
        let wide = format!("{} {}", "é".repeat(45), "y".repeat(10));
        assert_eq!(scalar(&wide, 0), wide);
        let spaces = format!("{}  y", "x".repeat(81));
        assert_eq!(scalar(&spaces, 0), spaces);
        let folded = format!("{} é {}", "x".repeat(80), "y".repeat(10));
        assert_eq!(scalar(&folded, 0), format!("{} é\n    {}", "x".repeat(80), "y".repeat(10)));
    }

    /// Whether the string is written plain, as first written (the reference of [`plain_allowed`]).
    fn reference_plain(text: &str) -> bool {
        let Some(first) = text.chars().next() else { return false };
        if text.starts_with(' ') || text.ends_with(' ') || text.ends_with(':') {
            return false;
        }
        if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
            return false;
        }
        if text.contains(": ") || text.contains(" #") {
            return false;
        }
        let special = ["true", "false", "null", "~", "yes", "no", "on", "off", "y", "n", ".inf", "-.inf", ".nan"];
        if special.iter().any(|w| w.eq_ignore_ascii_case(text)) || text.parse::<f64>().is_ok() {
            return false;
        }
        true
    }

    /// The folding rule one character at a time, as first written: the reference the word-wise
    /// [`yaml_value`] is checked against.
    fn reference(text: &str, column: usize, indent: usize) -> String {
        let mut out = String::new();
        if text.chars().any(char::is_control) {
            return serde_json::to_string(text).unwrap_or_default();
        }
        let quoted = !reference_plain(text);
        let mut col = column;
        if quoted {
            out.push('\'');
            col += 1;
        }
        let chars: Vec<char> = text.chars().collect();
        let mut prev_space = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_space = chars.get(i + 1).is_none_or(|&n| n == ' ');
                if !prev_space && col > BEST_WIDTH && i > 0 && !next_space {
                    out.push('\n');
                    out.extend(std::iter::repeat_n(' ', indent));
                    col = indent;
                } else {
                    out.push(' ');
                    col += 1;
                }
                prev_space = true;
            } else {
                if quoted && c == '\'' {
                    out.push('\'');
                    col += 1;
                }
                out.push(c);
                col += 1;
                prev_space = false;
            }
        }
        if quoted {
            out.push('\'');
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn folding_agrees_with_the_reference(text in "[a' é:#\u{100}]{0,240}(\u{85}|\u{7f}|\t)?", column in 0usize..12) {
            let mut out = String::new();
            yaml_value(&mut out, &text, column, 4);
            proptest::prop_assert_eq!(out, reference(&text, column, 4));
        }

        #[test]
        fn printable_ascii_is_bytes_0x20_to_0x7e(text in "[ -~]{0,40}[\u{0}-\u{ff}]?[ -~]{0,40}|\\PC{0,20}") {
            proptest::prop_assert_eq!(printable_ascii(text.as_bytes()), text.bytes().all(|b| (0x20..0x7f).contains(&b)));
        }

        #[test]
        fn plain_agrees_with_the_reference(text in "[-+.0-9eEiInNfFaAtTyY ~:#']{0,10}|[a :#é]{0,20}") {
            proptest::prop_assert_eq!(plain_allowed(&text), reference_plain(&text));
        }

        #[test]
        fn ascii_folding_agrees_with_the_reference(text in " {0,2}([ab:#']{1,9} {1,2}){0,60}", column in 0usize..100) {
            let mut out = String::new();
            yaml_value(&mut out, &text, column, 4);
            proptest::prop_assert_eq!(out, reference(&text, column, 4));
        }
    }

    #[test]
    fn responses_are_admission_reviews() {
        let verdict = Verdict {
            allowed: false,
            message: Some(Message::Text("no \"quotes\"".into())),
            warnings: vec!["w1".into(), "w2".into()],
            patch: Some(b"[]".to_vec()),
            results: Vec::new(),
            error: None,
        };
        assert_eq!(
            response("u-1", &verdict),
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
                "uid": "u-1", "allowed": false, "status": {"status": "Failure", "message": "no \"quotes\""},
                "warnings": ["w1", "w2"], "patchType": "JSONPatch", "patch": "W10="}})
        );
        let allowed = Verdict { allowed: true, message: None, warnings: Vec::new(), patch: None, results: Vec::new(), error: None };
        assert_eq!(
            String::from_utf8(response_bytes("u-2", &allowed)).unwrap_or_default(),
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u-2","allowed":true}}"#
        );
    }

    /// A denial as the response writes it straight from its parts, and as the set engine's
    /// writer writes its text: the same bytes.
    fn both_ways(uid: &str, failures: Blocked, warnings: Vec<String>, patch: Option<Vec<u8>>) -> (String, String) {
        let denial = Denial { kind: "Pod".into(), namespace: "team-a".into(), name: "web\"1".into(), failures };
        let text = block_message(&denial.kind, &denial.namespace, &denial.name, &denial.failures);
        let verdict = Verdict { allowed: false, message: Some(Message::Blocked(denial)), warnings, patch, results: Vec::new(), error: None };
        let direct = String::from_utf8(response_bytes(uid, &verdict)).unwrap_or_default();
        let via_text = crate::set::response_json(uid, false, Some(&text), &verdict.warnings, verdict.patch.as_deref());
        (direct, String::from_utf8(via_text).unwrap_or_default())
    }

    #[test]
    fn denials_are_written_escaped_in_one_pass() {
        let failures = Blocked::from([
            ("require-labels".to_owned(), BTreeMap::from([("check \"team\"".to_owned(), format!("label `team` is required: {}", "long words ".repeat(12)))])),
            ("p'2".to_owned(), BTreeMap::from([("r".to_owned(), "tab\there\nnew line \\ and \u{1} and \u{85} é".to_owned())])),
        ]);
        let (direct, via_text) = both_ways("u-1", failures, vec!["w \"1\"".into()], Some(b"[]".to_vec()));
        assert_eq!(direct, via_text);
        let value: Value = serde_json::from_str(&direct).unwrap_or(Value::Null);
        assert!(value.pointer("/response/status/message").and_then(Value::as_str).unwrap_or_default().starts_with("\n\nresource Pod/team-a/web\"1 was blocked"));
    }

    proptest::proptest! {
        #[test]
        fn denials_in_one_pass_agree_with_the_text(
            rows in proptest::collection::vec(("[a-z' \"]{1,12}", "[a-z\\\\' :é]{1,10}", "[a-z \"'\\\\:#é\n\t\u{1}\u{7f}\u{85}]{0,200}"), 0..5),
            warnings in proptest::collection::vec("[a \"\\\\\n]{0,12}", 0..3),
        ) {
            let mut failures = Blocked::new();
            for (policy, rule, message) in rows {
                failures.entry(policy).or_default().insert(rule, message);
            }
            let (direct, via_text) = both_ways("uid\"", failures, warnings, None);
            proptest::prop_assert_eq!(direct, via_text);
        }
    }

    #[test]
    fn hostile_bodies_are_bad_requests() {
        for (body, expect) in [
            (&b"not json"[..], "not valid JSON"),
            (br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#, "expected an admission.k8s.io/v1"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#, "no request"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}"#, "no uid"),
            (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","operation":"DELETE"}}"#, "needs oldObject"),
        ] {
            let err = parse(body).err().map(|e| e.0).unwrap_or_default();
            assert!(err.contains(expect), "{err}");
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes()).is_err());
    }
}
