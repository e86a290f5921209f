//! The `palisade test` runner: finds `kyverno-test.yaml` files, loads what they name, evaluates
//! and compares with the expected results. The conformance test runs the same code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{Map, Value};

use palisade_compiler::diagnostic::Diagnostic;
use palisade_compiler::ir::cel::{
    BindingIr, CelExceptionIr, CelPolicyIr, DeletingPolicyIr, GeneratingPolicyIr, ImageValidatingPolicyIr, MutatingPolicyIr,
};
use palisade_compiler::ir::policy::PolicyIr;
use palisade_compiler::source::{FileId, SourceMap};
use palisade_compiler::syntax;

use super::strict::Obj;
use super::testfile::{ExpectedResult, PolicyKindFlag, TestFile};
use super::produced::Produced;
use crate::engine::{self, Request, RuleResult, RuleVariables, UserInfo};
use crate::mutate;

pub const TEST_FILE_NAME: &str = "kyverno-test.yaml";

/// Finds test files under each path: the paths themselves when they are files, else every
/// `kyverno-test.yaml` below them, including in `.kyverno-test/` folders (other hidden folders
/// are skipped).
pub fn discover(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_file() {
            out.push(p.clone());
        } else {
            walk(p, &mut out, 0);
        }
    }
    out.sort();
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 32 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if !name.starts_with('.') || name == ".kyverno-test" {
                walk(&path, out, depth + 1);
            }
        } else if name == TEST_FILE_NAME {
            out.push(path);
        }
    }
}

/// The outcome of one expected result for one resource.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub policy: String,
    pub rule: String,
    pub resource: String,
    pub kind: String,
    pub expected: String,
    pub actual: String,
    pub ok: bool,
    pub reason: String,
    /// What kind of rule this is (`validate.pattern`, `mutate`, `ValidatingPolicy`, ...).
    pub category: String,
    /// The result was not checked, as Kyverno's CLI does not check it (a patched-resource file
    /// without the resource); it counts as skipped, neither passed nor failed.
    pub unchecked: bool,
}

#[derive(Clone, Debug)]
pub struct TestReport {
    pub file: PathBuf,
    /// Why the file could not be run, if it could not.
    pub error: Option<String>,
    pub outcomes: Vec<Outcome>,
}

/// Runs test files in parallel on all cores.
pub fn run_all(files: &[PathBuf]) -> Vec<TestReport> {
    files.par_iter().map(|f| run_file(f)).collect()
}

pub fn run_file(path: &Path) -> TestReport {
    match run_inner(path) {
        Ok(outcomes) => TestReport { file: path.to_owned(), error: None, outcomes },
        Err(e) => TestReport { file: path.to_owned(), error: Some(e), outcomes: Vec::new() },
    }
}

/// Loaded YAML documents of one file, as JSON, or an error naming the file, line and column.
pub fn load_documents(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut map = SourceMap::new();
    let file = map.add(path.display().to_string(), text.as_str());
    let (docs, diags) = syntax::parse(file, &text);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(render(&map, d));
    }
    Ok(docs.iter().map(|d| syntax::to_json(&d.root)).filter(|v| !v.is_null()).collect())
}

/// `file:line:column: message`.
pub fn render(map: &SourceMap, d: &Diagnostic) -> String {
    let name = map.get(d.span.file).map(|f| f.name.as_str()).unwrap_or("?");
    match map.resolve(d.span) {
        Some((start, _)) => format!("{name}:{}:{}: {}", start.line, start.column, d.message),
        None => format!("{name}: {}", d.message),
    }
}

/// Policies and what Palisade made of them.
#[derive(Default)]
pub struct PolicySet {
    pub policies: Vec<PolicyIr>,
    /// `(policy, rule)` -> category, for the conformance counts.
    pub categories: HashMap<(String, String), String>,
    /// Names of policies of kinds Palisade does not evaluate yet, with their kind.
    pub unsupported: HashMap<String, String>,
    /// ValidatingPolicy, NamespacedValidatingPolicy and ValidatingAdmissionPolicy.
    pub cel_policies: Vec<CelPolicyIr>,
    pub cel_bindings: Vec<BindingIr>,
    /// MutatingPolicy, NamespacedMutatingPolicy and MutatingAdmissionPolicy.
    pub mutating_policies: Vec<MutatingPolicyIr>,
    /// GeneratingPolicy and NamespacedGeneratingPolicy.
    pub generating_policies: Vec<GeneratingPolicyIr>,
    /// DeletingPolicy and NamespacedDeletingPolicy.
    pub deleting_policies: Vec<DeletingPolicyIr>,
    /// ImageValidatingPolicy and NamespacedImageValidatingPolicy.
    pub image_policies: Vec<ImageValidatingPolicyIr>,
    /// Report metadata of each evaluated policy, by [`policy_key`].
    pub meta: HashMap<String, PolicyMeta>,
}

/// What reports say about a policy, from its `policies.kyverno.io/*` annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyMeta {
    pub title: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub severity: Option<String>,
    /// `policies.kyverno.io/scored: "false"` makes failures warnings.
    pub scored: bool,
}

impl PolicyMeta {
    pub fn from_policy(doc: &Value) -> PolicyMeta {
        let ann = |k: &str| {
            doc.pointer("/metadata/annotations")
                .and_then(|a| a.get(format!("policies.kyverno.io/{k}")))
                .and_then(Value::as_str)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        PolicyMeta {
            title: ann("title"),
            description: ann("description"),
            category: ann("category"),
            severity: ann("severity").map(|s| s.to_ascii_lowercase()),
            scored: ann("scored").is_none_or(|s| s != "false"),
        }
    }
}

/// [`policy_key`] for CEL policies.
pub fn cel_policy_key(policy: &CelPolicyIr) -> String {
    match &policy.namespace {
        Some(ns) => format!("{ns}/{}", policy.name),
        None => policy.name.clone(),
    }
}

/// How reports name a policy: `namespace/name` for a namespaced `Policy`, else its name.
pub fn policy_key(policy: &PolicyIr) -> String {
    match &policy.namespace {
        Some(ns) => format!("{ns}/{}", policy.name),
        None => policy.name.clone(),
    }
}

impl PolicySet {
    pub fn add_document(&mut self, doc: &Value) -> Result<(), String> {
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        if api.starts_with("kyverno.io/") && (kind == "ClusterPolicy" || kind == "Policy") {
            let ir = PolicyIr::lower(doc).map_err(|e| format!("policy {name}: {e}"))?;
            let declared = doc.pointer("/spec/rules").and_then(Value::as_array).cloned().unwrap_or_default();
            for rule in &declared {
                let rname = rule.get("name").and_then(Value::as_str).unwrap_or_default();
                let cat = category(rule);
                for prefix in ["", "autogen-", "autogen-cronjob-"] {
                    self.categories.insert((name.clone(), format!("{prefix}{rname}")), cat.clone());
                }
            }
            self.meta.insert(policy_key(&ir), PolicyMeta::from_policy(doc));
            self.policies.push(ir);
        } else if matches!(kind, "ValidatingPolicy" | "NamespacedValidatingPolicy" | "ValidatingAdmissionPolicy")
            && (api.starts_with("policies.kyverno.io/") || api.starts_with("admissionregistration.k8s.io/"))
        {
            let ir = CelPolicyIr::lower(doc).map_err(|e| format!("policy {name}: {e}"))?;
            self.meta.insert(cel_policy_key(&ir), PolicyMeta::from_policy(doc));
            self.cel_policies.push(ir);
        } else if matches!(kind, "MutatingPolicy" | "NamespacedMutatingPolicy" | "MutatingAdmissionPolicy")
            && (api.starts_with("policies.kyverno.io/") || api.starts_with("admissionregistration.k8s.io/"))
        {
            self.mutating_policies.push(MutatingPolicyIr::lower(doc).map_err(|e| format!("policy {name}: {e}"))?);
        } else if matches!(kind, "GeneratingPolicy" | "NamespacedGeneratingPolicy") && api.starts_with("policies.kyverno.io/") {
            self.generating_policies.push(GeneratingPolicyIr::lower(doc).map_err(|e| format!("policy {name}: {e}"))?);
        } else if matches!(kind, "DeletingPolicy" | "NamespacedDeletingPolicy") && api.starts_with("policies.kyverno.io/") {
            let ir = DeletingPolicyIr::lower(doc).map_err(|e| format!("policy {name}: {e}"))?;
            self.meta.insert(ir.namespace.as_ref().map_or_else(|| ir.name.clone(), |ns| format!("{ns}/{}", ir.name)), PolicyMeta::from_policy(doc));
            self.deleting_policies.push(ir);
        } else if matches!(kind, "ImageValidatingPolicy" | "NamespacedImageValidatingPolicy") && api.starts_with("policies.kyverno.io/") {
            let ir = ImageValidatingPolicyIr::lower(doc).map_err(|e| format!("policy {name}: {e}"))?;
            self.meta.insert(ir.namespace.as_ref().map_or_else(|| ir.name.clone(), |ns| format!("{ns}/{}", ir.name)), PolicyMeta::from_policy(doc));
            self.image_policies.push(ir);
        } else if kind == "ValidatingAdmissionPolicyBinding" && api.starts_with("admissionregistration.k8s.io/") {
            self.cel_bindings.push(BindingIr::lower(doc));
        } else if api.starts_with("policies.kyverno.io/") || api.starts_with("admissionregistration.k8s.io/") {
            self.unsupported.insert(name, kind.to_owned());
        }
        Ok(())
    }
}

/// The category of a `kyverno.io` rule, as the conformance report counts them.
pub fn category(rule: &Value) -> String {
    if let Some(v) = rule.get("validate") {
        for (field, cat) in [
            ("pattern", "validate.pattern"),
            ("anyPattern", "validate.anyPattern"),
            ("deny", "validate.deny"),
            ("foreach", "validate.foreach"),
            ("podSecurity", "validate.podSecurity"),
            ("cel", "validate.cel"),
            ("manifests", "validate.manifests"),
        ] {
            if v.get(field).is_some() {
                return cat.into();
            }
        }
        return "validate".into();
    }
    for (field, cat) in [("mutate", "mutate"), ("generate", "generate"), ("verifyImages", "verifyImages")] {
        if rule.get(field).is_some() {
            return cat.into();
        }
    }
    "other".into()
}

fn run_inner(path: &Path) -> Result<Vec<Outcome>, String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut map = SourceMap::new();
    let file: FileId = map.add(path.display().to_string(), text.as_str());
    let (docs, mut diags) = syntax::parse(file, &text);
    let root = docs.first().map(|d| d.root.clone()).ok_or_else(|| format!("{}: empty test file", path.display()))?;
    let test = TestFile::decode(&root, &mut diags);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(render(&map, d));
    }
    let test = test.ok_or_else(|| format!("{}: not a test file", path.display()))?;

    let mut set = PolicySet::default();
    for p in &test.policies {
        for doc in load_path(&dir.join(p))? {
            set.add_document(&doc)?;
        }
    }
    let mut resources = Vec::new();
    for r in &test.resources {
        for doc in load_path(&dir.join(r))? {
            expand_list(doc, &mut resources);
        }
    }
    let values = match &test.variables {
        Some(v) => Values::load(&dir.join(v))?,
        None => Values::default(),
    };
    let user = match &test.userinfo {
        Some(u) => load_userinfo(&dir.join(u))?,
        None => UserInfo::default(),
    };

    // What CEL policies may read besides the request: the test's resources (for
    // `resource.Get/List` and parameters), VAP bindings and CEL policy exceptions.
    let mut host = palisade_stdlib::cel::Host { resources: resources.clone(), ..Default::default() };
    for r in test.cluster_resources.iter().chain(&test.param_resources) {
        for doc in load_path(&dir.join(r))? {
            expand_list(doc, &mut host.resources);
        }
    }
    // A `kind: Context` file lends resources (`spec.resources`) to the CEL resource library.
    if let Some(c) = &test.context {
        for doc in load_path(&dir.join(c))? {
            for r in doc.pointer("/spec/resources").and_then(Value::as_array).into_iter().flatten() {
                expand_list(r.clone(), &mut host.resources);
            }
            for i in doc.pointer("/spec/images").and_then(Value::as_array).into_iter().flatten() {
                if let (Some(reference), Some(m)) = (i.get("image").and_then(Value::as_str), i.as_object()) {
                    let mut meta = m.clone();
                    meta.remove("image");
                    host.images.push((reference.to_owned(), Value::Object(meta)));
                }
            }
        }
    }
    let mut exceptions = Vec::new();
    for e in &test.exceptions {
        for doc in load_path(&dir.join(e))? {
            let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
            if api.starts_with("policies.kyverno.io/") && doc.get("kind").and_then(Value::as_str) == Some("PolicyException") {
                exceptions.push(CelExceptionIr::lower(&doc).map_err(|e| format!("exception: {e}"))?);
            }
        }
    }
    let host = std::sync::Arc::new(host);
    let inputs = crate::cel::CelInputs { host: host.clone(), bindings: set.cel_bindings.clone(), exceptions };
    // Generate sources (`clone`, `cloneList`) and mutate-existing targets.
    let mut mutation = MutationInputs { sources: resources.clone(), targets: Vec::new() };
    for r in &test.cluster_resources {
        for doc in load_path(&dir.join(r))? {
            expand_list(doc, &mut mutation.sources);
        }
    }
    for r in &test.target_resources {
        for doc in load_path(&dir.join(r))? {
            expand_list(doc, &mut mutation.targets);
        }
    }
    // verifyImages rules reach registries, as `kyverno test` does (anonymously unless the
    // policy's entries say otherwise); the verifier is only started when a policy needs it.
    let verifier = if set.policies.iter().any(crate::images::has_image_rules) {
        Some(crate::images::Verifier::new(crate::images::VerifierConfig::default())?)
    } else {
        None
    };
    let (actual, produced) = palisade_stdlib::cel::with_host(&host, || evaluate_all(&set, &resources, &values, &user, &inputs, &mutation, verifier.as_ref()))?;
    let mut outcomes = Vec::new();
    for exp in &test.results {
        for res_name in &exp.resources {
            let mut outcome = match produced.target_outcome(exp, res_name) {
                Some(o) => o,
                None => compare(exp, res_name, &resources, &actual, &set),
            };
            produced.check(&mut outcome, exp, res_name, dir, &resources);
            if !outcome.ok && outcome.actual == "not found" && let Some(why) = unknown_policy(exp, &set) {
                let at = map.resolve(exp.span).map(|(s, _)| format!("{}:{}:{}: ", path.display(), s.line, s.column)).unwrap_or_default();
                outcome.reason = format!("{at}{why}");
            }
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

/// What mutate and generate rules read besides the request.
struct MutationInputs {
    /// Resources `clone` and `cloneList` copy from: the test's resources and `clusterResources`.
    sources: Vec<Value>,
    /// `targetResources`, for mutate-existing rules.
    targets: Vec<Value>,
}

/// Evaluates every policy on every resource once: all mutation first (each policy sees the
/// object the policies before it left) and generation, then validation of the final object.
fn evaluate_all(
    set: &PolicySet,
    resources: &[Value],
    values: &Values,
    user: &UserInfo,
    inputs: &crate::cel::CelInputs,
    mutation: &MutationInputs,
    images: Option<&crate::images::Verifier>,
) -> Result<(Vec<(usize, RuleResult)>, Produced), String> {
    let mut actual: Vec<(usize, RuleResult)> = Vec::new();
    let mut produced = Produced::default();
    for (ri, original) in resources.iter().enumerate() {
        let rname = original.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let ns = engine::namespace_of(original).unwrap_or_default();
        let ns_labels = values.namespace_labels.get(ns);
        let mut current = original.clone();
        for policy in &set.policies {
            let vars = values.for_resource(&policy.name, rname);
            let req = offline_request(&current, user, ns_labels, &vars, values.for_rules(&policy.name));
            let m = mutate::mutate(policy, &req);
            let g = mutate::generate::generate(policy, &req, &mutation.sources);
            let t = mutate::mutate_targets(policy, &req, &mutation.targets);
            actual.extend(m.results.into_iter().chain(g.results).map(|r| (ri, r)));
            produced.patched.insert((ri, policy.name.clone()), m.patched.clone());
            for (rule, r) in g.resources {
                produced.generated.entry((ri, policy.name.clone(), rule)).or_default().push(r);
            }
            for tm in t {
                let rule = tm.result.rule.clone();
                produced.targets.entry((policy.name.clone(), rule)).or_default().push((tm.result, tm.patched));
            }
            current = m.patched;
        }
        for policy in &set.mutating_policies {
            let vars = values.for_resource(&policy.name, rname);
            let kind = current.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
            let ns_for_object = if ns.is_empty() && !crate::cel::cluster_scoped(&kind) { "default" } else { ns };
            let namespace_object = namespace_object(ns_for_object, &values.namespaces, &inputs.host.resources, values.namespace_labels.get(ns_for_object));
            let req = offline_request(&current, user, ns_labels, &vars, values.for_rules(&policy.name));
            if let Some(m) = crate::cel::mutate_policy(policy, &req, namespace_object.as_ref()) {
                actual.push((ri, m.result));
                produced.patched.insert((ri, policy.name.clone()), m.patched.clone());
                current = m.patched;
            }
        }
        for policy in &set.generating_policies {
            let vars = values.for_resource(&policy.name, rname);
            let operation = operation_of(&vars);
            let kind = current.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
            let ns_for_object = if ns.is_empty() && !crate::cel::cluster_scoped(&kind) { "default" } else { ns };
            let namespace_object = namespace_object(ns_for_object, &values.namespaces, &inputs.host.resources, values.namespace_labels.get(ns_for_object));
            let req = Request { operation, object: &current, old_object: None, user, namespace_labels: ns_labels, variables: &vars, rule_variables: None };
            if let Some(g) = crate::cel::generate_policy(policy, &req, namespace_object.as_ref()) {
                actual.push((ri, g.result));
                produced.generated.entry((ri, policy.name.clone(), String::new())).or_default().extend(g.resources);
            }
        }
        // Image verification after every mutation, as Kyverno's CLI orders it: the digest
        // patches and the verify-images annotation change the object validation sees.
        if let Some(verifier) = images {
            for policy in set.policies.iter().filter(|p| crate::images::has_image_rules(p)) {
                let vars = values.for_resource(&policy.name, rname);
                let req = offline_request(&current, user, ns_labels, &vars, values.for_rules(&policy.name));
                let outcome = verifier.verify(policy, &req);
                let mut next = current.clone();
                let patched = crate::images::apply_patches(&mut next, &outcome.patches);
                actual.extend(outcome.results.into_iter().map(|r| (ri, r)));
                if patched.is_ok() && !outcome.patches.is_empty() {
                    produced.patched.insert((ri, policy.name.clone()), next.clone());
                    current = next;
                }
            }
        }
        let resource = &current;
        for policy in &set.policies {
            let vars = values.for_resource(&policy.name, rname);
            let req = offline_request(resource, user, ns_labels, &vars, values.for_rules(&policy.name));
            let results = engine::evaluate(policy, &req);
            match images {
                Some(verifier) if crate::images::has_image_rules(policy) => {
                    // The verifier's validate phase stands in for the interpreter's
                    // "needs registry access" result on image rules.
                    let image_rule = |r: &RuleResult| policy.rules.iter().any(|x| x.name == r.rule && matches!(x.body, palisade_compiler::ir::policy::RuleBody::VerifyImages(_)));
                    actual.extend(results.into_iter().filter(|r| !image_rule(r)).map(|r| (ri, r)));
                    actual.extend(verifier.validate(policy, &req).into_iter().map(|r| (ri, r)));
                }
                _ => actual.extend(results.into_iter().map(|r| (ri, r))),
            }
        }
        for policy in &set.cel_policies {
            let vars = values.for_resource(&policy.name, rname);
            // Kyverno's CLI puts namespaced resources that name no namespace in `default`.
            let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
            let ns_for_object = if ns.is_empty() && !crate::cel::cluster_scoped(kind) { "default" } else { ns };
            let namespace_object = namespace_object(ns_for_object, &values.namespaces, &inputs.host.resources, values.namespace_labels.get(ns_for_object));
            // The CLI gives namespaced resources without a namespace the `default` one.
            let mut defaulted;
            let mut object = resource;
            if ns.is_empty() && ns_for_object == "default" {
                defaulted = resource.clone();
                if let Some(meta) = defaulted.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("namespace".into(), Value::String("default".into()));
                }
                object = &defaulted;
            }
            let req = offline_request(object, user, ns_labels, &vars, values.for_rules(&policy.name));
            let b = crate::cel::bindings(&req, namespace_object.as_ref());
            actual.extend(crate::cel::evaluate_policy(policy, &req, &b, inputs, namespace_object.as_ref()).into_iter().map(|r| (ri, r)));
        }
        for policy in &set.image_policies {
            let vars = values.for_resource(&policy.name, rname);
            let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
            let ns_for_object = if ns.is_empty() && !crate::cel::cluster_scoped(kind) { "default" } else { ns };
            let namespace_object = namespace_object(ns_for_object, &values.namespaces, &inputs.host.resources, values.namespace_labels.get(ns_for_object));
            let req = offline_request(resource, user, ns_labels, &vars, None);
            // Offline, like Kyverno's CLI without `--registry`: signature checks fail with an
            // error that says registry access is needed.
            if let Some(r) = crate::cel::images::evaluate(policy, &req, inputs, namespace_object.as_ref(), None) {
                actual.push((ri, r));
            }
        }
        if !set.deleting_policies.is_empty() {
            // A deleting policy reads the resource as it exists, in `default` when it names no
            // namespace, as the CLI loads it.
            let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
            let ns_for_object = if ns.is_empty() && !crate::cel::cluster_scoped(kind) { "default" } else { ns };
            let namespace_object = namespace_object(ns_for_object, &values.namespaces, &inputs.host.resources, values.namespace_labels.get(ns_for_object));
            let mut object = resource.clone();
            if ns.is_empty() && ns_for_object == "default"
                && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.insert("namespace".into(), Value::String("default".into()));
            }
            for policy in &set.deleting_policies {
                actual.push((ri, crate::cel::delete::evaluate(policy, &object, inputs, namespace_object.as_ref())));
            }
        }
    }
    Ok((actual, produced))
}

/// The Namespace object of a namespaced resource: from the values file's `namespaces` or the
/// test's resources when they declare it, else built from the values file's labels.
pub(crate) fn namespace_object(ns: &str, namespaces: &[Value], resources: &[Value], labels: Option<&Map<String, Value>>) -> Option<Value> {
    if ns.is_empty() {
        return None;
    }
    let declared = namespaces.iter().chain(resources).find(|r| {
        r.get("kind").and_then(Value::as_str) == Some("Namespace") && r.pointer("/metadata/name").and_then(Value::as_str) == Some(ns)
    });
    Some(declared.cloned().unwrap_or_else(|| {
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels.cloned().unwrap_or_default()}})
    }))
}

fn compare(exp: &ExpectedResult, res_name: &str, resources: &[Value], actual: &[(usize, RuleResult)], set: &PolicySet) -> Outcome {
    let (policy_ns, policy_name) = match exp.policy.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (exp.namespace.as_deref(), exp.policy.as_str()),
    };
    let rule = exp.rule.clone().unwrap_or_default();
    let mut outcome = Outcome {
        policy: exp.policy.clone(),
        rule: rule.clone(),
        resource: res_name.to_owned(),
        kind: exp.kind.clone(),
        expected: exp.result.clone(),
        actual: String::new(),
        ok: false,
        reason: String::new(),
        category: set.categories.get(&(policy_name.to_owned(), rule.clone())).cloned().unwrap_or_else(|| {
            match exp.policy_kind {
                PolicyKindFlag::Kyverno => set.unsupported.get(policy_name).cloned().unwrap_or_else(|| "unknown".into()),
                other => format!("{other:?}"),
            }
        }),
        unchecked: false,
    };
    if let Some(kind) = set.unsupported.get(policy_name) {
        outcome.reason = format!("{kind} policies are not evaluated by Palisade yet");
        return outcome;
    }
    let (want_ns, want_name) = match res_name.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, res_name),
    };
    // The resource the expected result names: by name, by namespace when it gives one (Kyverno's
    // CLI puts a resource that names no namespace in `default`), and by kind when it gives one.
    let named = |res: &Value| {
        let name = res.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let ns = engine::namespace_of(res).unwrap_or_default();
        let kind = res.get("kind").and_then(Value::as_str).unwrap_or_default();
        name == want_name
            && want_ns.is_none_or(|w| w == ns || (ns.is_empty() && w == "default"))
            && (exp.kind.is_empty() || exp.kind == kind)
    };
    let found = actual.iter().find(|(ri, r)| {
        resources.get(*ri).is_some_and(named)
            && r.policy == policy_name
            && (rule.is_empty() || rule_matches(&rule, &r.rule) || (rule == r.policy && (r.rule.is_empty() || r.rule.starts_with("autogen-"))))
    });
    let _ = policy_ns;
    // Kyverno's CLI counts a resource that no rule applied to as skipped (kyverno issue 8942):
    // an expected `skip` holds when the resource is among the test's resources.
    let considered = || resources.iter().any(named);
    match found {
        None if exp.result.eq_ignore_ascii_case("skip") && considered() => {
            outcome.actual = "skip".into();
            outcome.ok = true;
        }
        None => {
            outcome.actual = "not found".into();
            outcome.reason = "no result for this policy, rule and resource".into();
        }
        Some((_, r)) => {
            outcome.actual = r.status.as_str().into();
            outcome.ok = outcome.actual.eq_ignore_ascii_case(&exp.result);
            if !outcome.ok {
                outcome.reason = r.message.clone();
            }
        }
    }
    outcome
}

/// Why a result names a policy the test does not load, if it does: a typo in a test file
/// must not read as an ordinary "no result".
fn unknown_policy(exp: &ExpectedResult, set: &PolicySet) -> Option<String> {
    let name = exp.policy.rsplit_once('/').map_or(exp.policy.as_str(), |(_, n)| n);
    if set.policies.iter().any(|p| p.name == name)
        || set.cel_policies.iter().any(|p| p.name == name)
        || set.mutating_policies.iter().any(|p| p.name == name)
        || set.generating_policies.iter().any(|p| p.name == name)
        || set.deleting_policies.iter().any(|p| p.name == name)
        || set.image_policies.iter().any(|p| p.name == name)
        || set.unsupported.contains_key(name)
    {
        return None;
    }
    let mut loaded: Vec<&str> = set
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .chain(set.cel_policies.iter().map(|p| p.name.as_str()))
        .chain(set.mutating_policies.iter().map(|p| p.name.as_str()))
        .chain(set.generating_policies.iter().map(|p| p.name.as_str()))
        .chain(set.deleting_policies.iter().map(|p| p.name.as_str()))
        .chain(set.image_policies.iter().map(|p| p.name.as_str()))
        .chain(set.unsupported.keys().map(String::as_str))
        .collect();
    loaded.sort_unstable();
    loaded.dedup();
    let hint = palisade_compiler::check::did_you_mean(name, loaded.iter().copied()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
    Some(format!("unknown policy `{}`: the test loads {}{hint}", exp.policy, if loaded.is_empty() { "no policies".to_string() } else { loaded.join(", ") }))
}

/// Kyverno's test command accepts the rule name a policy declares for results of the rules
/// autogen derived from it (`check` for `autogen-check` and `autogen-cronjob-check`).
fn rule_matches(expected: &str, actual: &str) -> bool {
    actual == expected
        || actual.strip_prefix("autogen-").is_some_and(|r| r == expected)
        || actual.strip_prefix("autogen-cronjob-").is_some_and(|r| r == expected)
}

/// Documents of a file, or of every YAML file in a folder.
pub fn load_path(path: &Path) -> Result<Vec<Value>, String> {
    if path.is_dir() {
        let mut out = Vec::new();
        let mut entries: Vec<_> = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
                out.extend(load_documents(&p)?);
            }
        }
        return Ok(out);
    }
    load_documents(path)
}

/// `kind: List` documents stand for their items.
pub fn expand_list(doc: Value, out: &mut Vec<Value>) {
    if doc.get("kind").and_then(Value::as_str).is_some_and(|k| k == "List" || k.ends_with("List"))
        && let Some(Value::Array(items)) = doc.get("items")
    {
        out.extend(items.iter().cloned());
        return;
    }
    if doc.is_object() {
        out.push(doc);
    }
}

/// The operation a values file sets with `request.operation`, `CREATE` by default.
pub fn operation_of(vars: &[(String, Value)]) -> &str {
    vars.iter().find(|(k, _)| k == "request.operation").and_then(|(_, v)| v.as_str()).unwrap_or("CREATE")
}

/// The offline request a values file describes for one policy and resource: the operation
/// its variables name (CREATE by default) and, for UPDATE and DELETE, the object as its own
/// old object.
pub fn offline_request<'a>(
    object: &'a Value,
    user: &'a UserInfo,
    namespace_labels: Option<&'a serde_json::Map<String, Value>>,
    variables: &'a [(String, Value)],
    rule_variables: Option<&'a RuleVariables>,
) -> Request<'a> {
    let operation = operation_of(variables);
    Request { operation, object, old_object: old_object_for(operation, object), user, namespace_labels, variables, rule_variables }
}

/// Offline, an UPDATE or DELETE has no separate old object: like Kyverno's CLI, the resource
/// is its own old object (so `request.oldObject` equals `request.object` on UPDATE).
pub fn old_object_for<'a>(operation: &str, resource: &'a Value) -> Option<&'a Value> {
    matches!(operation, "UPDATE" | "DELETE").then_some(resource)
}

/// A values file (`kind: Values`): variables per policy and resource, namespace labels.
#[derive(Default)]
pub struct Values {
    global: Vec<(String, Value)>,
    /// (policy, resource) -> variables.
    per: HashMap<(String, String), Vec<(String, Value)>>,
    /// policy -> rule -> variables, set when the rule loads its context (and again for every
    /// `foreach` element), as Kyverno's offline context loader does.
    per_rule: HashMap<String, RuleVariables>,
    pub namespace_labels: HashMap<String, Map<String, Value>>,
    /// Whole Namespace objects (`namespaces`), for CEL's `namespaceObject`.
    pub namespaces: Vec<Value>,
}

impl Values {
    pub fn load(path: &Path) -> Result<Values, String> {
        let docs = load_documents(path)?;
        let doc = docs.first().cloned().unwrap_or(Value::Null);
        let mut v = Values::default();
        let pairs = |m: Option<&Value>| -> Vec<(String, Value)> {
            m.and_then(Value::as_object).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
        };
        v.global = pairs(doc.get("globalValues"));
        for p in doc.get("policies").and_then(Value::as_array).into_iter().flatten() {
            let pname = p.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let rules = v.per_rule.entry(pname.clone()).or_default();
            for r in p.get("rules").and_then(Value::as_array).into_iter().flatten() {
                let rname = r.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                rules.entry(rname).or_default().extend(pairs(r.get("values")));
            }
            for r in p.get("resources").and_then(Value::as_array).into_iter().flatten() {
                let rname = r.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
                v.per.insert((pname.clone(), rname), pairs(r.get("values")));
            }
        }
        for ns in doc.get("namespaces").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = ns.pointer("/metadata/name").and_then(Value::as_str) {
                let labels = ns.pointer("/metadata/labels").and_then(Value::as_object).cloned().unwrap_or_default();
                v.namespace_labels.entry(name.to_owned()).or_insert(labels);
            }
            v.namespaces.push(ns.clone());
        }
        for ns in doc.get("namespaceSelector").and_then(Value::as_array).into_iter().flatten() {
            let name = ns.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let labels = ns.get("labels").and_then(Value::as_object).cloned().unwrap_or_default();
            v.namespace_labels.insert(name, labels);
        }
        Ok(v)
    }

    /// Adds `--set k=v` variables; they apply to every policy and resource.
    pub fn set_globals(&mut self, pairs: impl IntoIterator<Item = (String, Value)>) {
        self.global.extend(pairs);
    }

    /// Global values and the values of this policy for this resource.
    pub fn for_resource(&self, policy: &str, resource: &str) -> Vec<(String, Value)> {
        let mut out = self.global.clone();
        if let Some(vals) = self.per.get(&(policy.to_owned(), resource.to_owned())) {
            out.extend(vals.iter().cloned());
        }
        out
    }

    /// The rule-level values of a policy, by rule name.
    pub fn for_rules(&self, policy: &str) -> Option<&RuleVariables> {
        self.per_rule.get(policy)
    }
}

/// A `kind: UserInfo` file.
pub fn load_userinfo(path: &Path) -> Result<UserInfo, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut map = SourceMap::new();
    let file = map.add(path.display().to_string(), text.as_str());
    let (docs, mut diags) = syntax::parse(file, &text);
    let mut user = UserInfo::default();
    if let Some(doc) = docs.first() && let Some(mut o) = Obj::new(&doc.root, "the user info file", &mut diags) {
        let _ = o.take("apiVersion");
        let _ = o.take("kind");
        let _ = o.take("metadata");
        user.roles = o.strings("roles", &mut diags);
        user.cluster_roles = o.strings("clusterRoles", &mut diags);
        if let Some(info) = o.take("userInfo") && let Some(mut u) = Obj::new(info, "userInfo", &mut diags) {
            user.username = u.string("username", &mut diags).unwrap_or_default();
            user.groups = u.strings("groups", &mut diags);
            let _ = u.take("uid");
            let _ = u.take("extra");
            u.finish(&["username", "groups", "uid", "extra"], &mut diags);
        }
        o.finish(&["apiVersion", "kind", "metadata", "roles", "clusterRoles", "userInfo"], &mut diags);
    }
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(render(&map, d));
    }
    Ok(user)
}
