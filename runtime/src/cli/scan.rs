//! `palisade apply`'s evaluation: every policy of a compiled set against every resource, in
//! parallel on all cores. Policies are lowered once and shared read-only by the workers; each
//! resource is independent, so the results are the same whatever the schedule, and they are
//! returned in input order.
//!
//! The order per resource is Kyverno's CLI's: mutate (and generate) rules, then `verifyImages`
//! rules through the image verifier (which may pin images by digest and records the
//! `kyverno.io/verify-images` annotation), then validation of the final object, where each
//! `verifyImages` rule is checked again for `verifyDigest` and `required`. Kyverno counts both
//! image phases, so a verified image gives its rule two results.

//!
//! # Streaming
//! [`scan_paths`] never holds the whole input: a reader thread cuts files and standard input
//! into documents and hands them over in bounded batches; the workers parse and evaluate a
//! batch, and what is kept of it is only what the output needs: the counts, the findings the
//! output lists, and a small [`ResourceRef`] for each resource that has one. Peak memory
//! therefore follows the batch size and the number of kept findings, not the input size.
//! Policies that read other resources of the scan (generate rules that clone, CEL policies
//! with `resource.Get/List`) need the whole input, and get it: [`needs_whole_input`].

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value;

use super::resources::{self, Chunk, DocumentReader, LoadError, Resource};

use super::runner::{self, PolicySet, Values, cel_policy_key, policy_key};
use palisade_compiler::ir::policy::RuleBody;

use crate::engine::{self, Status, UserInfo};
use crate::images::{self, Verifier};
use crate::mutate;

/// What the scan needs besides policies and resources.
pub struct ScanConfig<'a> {
    pub values: &'a Values,
    pub user: &'a UserInfo,
    /// `--audit-warn`: failures of Audit rules count as warnings.
    pub audit_warn: bool,
    /// Keep passing and skipped findings. Reports and detailed listings need them; the plain
    /// listing only counts them, which keeps a scan of a large dump small in memory.
    pub keep_passing: bool,
    /// Verifies `verifyImages` rules against registries. Without one those rules report an
    /// error saying they need registry access.
    pub images: Option<&'a Verifier>,
    /// Keep the resources that mutation or image digests changed (`apply --output`).
    pub keep_mutated: bool,
}

/// A scan's findings (all of them, or only the non-passing ones), the resources they are
/// about, and the counts of all.
#[derive(Debug, Default)]
pub struct Scan {
    /// The resources that have at least one kept finding, in input order.
    pub resources: Vec<ResourceRef>,
    pub findings: Vec<Finding>,
    pub counts: Counts,
    /// How many resources were evaluated.
    pub scanned: usize,
    /// With [`ScanConfig::keep_mutated`]: `(resource number in input order, final object)`
    /// for every resource that mutate rules or `mutateDigest` changed.
    pub mutated: Vec<(usize, Value)>,
}

/// What outputs need of a scanned resource: its identity and where it was written. The
/// resource itself is dropped once it is evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// The namespace written in the manifest, if any (never empty).
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub file: Arc<str>,
    /// The 1-based line where the resource's mapping starts.
    pub line: u32,
}

impl ResourceRef {
    pub fn of(resource: &Resource) -> ResourceRef {
        let text = |p: &str| resource.value.pointer(p).and_then(Value::as_str).map(str::to_owned);
        ResourceRef {
            api_version: resource.api_version().to_owned(),
            kind: resource.kind().to_owned(),
            name: resource.name().to_owned(),
            namespace: resource.namespace().map(str::to_owned),
            uid: text("/metadata/uid"),
            file: resource.file.clone(),
            line: resource.line,
        }
    }

    /// `namespace/kind/name` (`kind/name` without a namespace), as Kyverno's CLI names a
    /// resource in its messages.
    pub fn path(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// One rule's verdict on one resource, as reports and outputs show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Index of the resource in [`Scan::resources`].
    pub resource: usize,
    /// The policy as reports name it (`ns/name` for a namespaced Policy), shared by all of
    /// its findings: a large scan holds millions of them.
    pub policy: Arc<str>,
    pub rule: String,
    /// The status after `--audit-warn` and `policies.kyverno.io/scored: "false"`.
    pub status: Status,
    pub message: String,
    pub enforce: bool,
    pub scored: bool,
}

/// Result counts, in Kyverno's summary order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub error: usize,
    pub skip: usize,
}

impl Counts {
    pub fn add(&mut self, status: Status) {
        match status {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Warn => self.warn += 1,
            Status::Error => self.error += 1,
            Status::Skip => self.skip += 1,
        }
    }

    pub fn merge(&mut self, other: &Counts) {
        self.pass += other.pass;
        self.fail += other.fail;
        self.warn += other.warn;
        self.error += other.error;
        self.skip += other.skip;
    }

    pub fn of(findings: &[Finding]) -> Counts {
        let mut c = Counts::default();
        for f in findings {
            c.add(f.status);
        }
        c
    }

    /// `pass: a, fail: b, warn: c, error: d, skip: e`.
    pub fn summary_line(&self) -> String {
        format!("pass: {}, fail: {}, warn: {}, error: {}, skip: {}", self.pass, self.fail, self.warn, self.error, self.skip)
    }
}

/// Evaluates every policy on every resource held in memory; `progress` is called once per
/// resource done (from any worker thread).
pub fn scan(set: &PolicySet, resources: &[Resource], cfg: &ScanConfig, progress: &(dyn Fn() + Sync)) -> Scan {
    let prepared = Prepared::new(set, cfg, Some(resources));
    let per_resource: Vec<Evaluation> = resources
        .par_iter()
        .map(|resource| {
            let out = prepared.evaluate(set, resource, cfg);
            progress();
            out
        })
        .collect();
    let mut out = Scan::default();
    for (resource, e) in resources.iter().zip(per_resource) {
        let r = (!e.found.is_empty()).then(|| ResourceRef::of(resource));
        out.add(r, e);
    }
    out
}

/// Whether some policy reads the other resources of the scan, so that the scan cannot drop a
/// resource once it is evaluated: generate rules that clone (`clone`, `cloneList`, also under
/// `foreach`), which Kyverno's CLI serves from the resources it was given, and CEL policies,
/// which may call `resource.Get/List` (and deleting policies, which run on the same host).
/// Generate rules with `data` need nothing else.
pub fn needs_whole_input(set: &PolicySet) -> bool {
    let clones = |v: &Value| v.get("clone").is_some() || v.get("cloneList").is_some();
    !set.cel_policies.is_empty()
        || !set.deleting_policies.is_empty()
        || set.policies.iter().flat_map(|p| &p.rules).any(|r| match &r.body {
            RuleBody::Generate(g) => clones(&g.raw) || g.raw.get("foreach").and_then(Value::as_array).is_some_and(|fe| fe.iter().any(clones)),
            _ => false,
        })
}

/// How many documents a batch holds, and how many bytes at most: enough for every core to
/// stay busy between two hand-overs, small enough that a batch is a few megabytes parsed.
pub const BATCH_DOCUMENTS: usize = 512;
pub const BATCH_BYTES: usize = 4 << 20;
/// Batches read ahead of the workers.
const READ_AHEAD: usize = 2;

/// What a streaming scan reports while it runs, on the calling thread and in input order.
pub trait ScanEvents {
    /// A file or document could not be loaded; the scan goes on.
    fn load_error(&mut self, error: &LoadError);
    /// A batch is done: its documents' bytes and the resources evaluated in it.
    fn progress(&mut self, _bytes: u64, _resources: usize) {}
}

/// Reads, evaluates and drops the resources of `paths` (files, folders, `-` for `stdin`) in
/// bounded batches: a reader thread cuts the input into documents while the workers evaluate
/// the previous batch. Findings come out in input order, as [`scan`] gives them.
pub fn scan_paths(set: &PolicySet, paths: Vec<PathBuf>, stdin: Box<dyn BufRead + Send>, cfg: &ScanConfig, events: &mut dyn ScanEvents) -> Scan {
    let reader = DocumentReader::new(paths, stdin);
    if needs_whole_input(set) {
        let chunks: Vec<Result<Chunk, LoadError>> = reader.collect();
        let bytes: usize = chunks.iter().map(|c| c.as_ref().map_or(0, |c| c.text.len())).sum();
        let loaded = resources::parse_chunks(chunks);
        for e in &loaded.errors {
            events.load_error(e);
        }
        let out = scan(set, &loaded.resources, cfg, &|| {});
        events.progress(bytes as u64, out.scanned);
        return out;
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<Chunk, LoadError>>>(READ_AHEAD);
        scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH_DOCUMENTS);
            let mut bytes = 0usize;
            for item in reader {
                bytes += item.as_ref().map_or(0, |c| c.text.len());
                batch.push(item);
                if batch.len() >= BATCH_DOCUMENTS || bytes >= BATCH_BYTES {
                    bytes = 0;
                    // The receiver is gone only if the scan stopped; then reading stops too.
                    if tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH_DOCUMENTS))).is_err() {
                        return;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
        });
        scan_batches(set, rx, cfg, events)
    })
}

/// Evaluates batches of documents as they arrive (see [`scan_paths`]).
pub fn scan_batches(set: &PolicySet, batches: impl IntoIterator<Item = Vec<Result<Chunk, LoadError>>>, cfg: &ScanConfig, events: &mut dyn ScanEvents) -> Scan {
    let prepared = Prepared::new(set, cfg, None);
    let mut out = Scan::default();
    for batch in batches {
        let bytes: usize = batch.iter().map(|c| c.as_ref().map_or(0, |c| c.text.len())).sum();
        let done: Vec<Evaluated> = batch
            .into_par_iter()
            .map(|item| {
                let chunk = match item {
                    Ok(chunk) => chunk,
                    Err(e) => return Evaluated { errors: vec![e], resources: Vec::new() },
                };
                let loaded = resources::parse_chunk(&chunk.file, &chunk.text, chunk.first_line);
                let resources = loaded
                    .resources
                    .iter()
                    .map(|r| {
                        let e = prepared.evaluate(set, r, cfg);
                        // Only a resource that the output names is remembered.
                        ((!e.found.is_empty()).then(|| ResourceRef::of(r)), e)
                    })
                    .collect();
                Evaluated { errors: loaded.errors, resources }
            })
            .collect();
        let before = out.scanned;
        for d in done {
            for e in &d.errors {
                events.load_error(e);
            }
            for (r, e) in d.resources {
                out.add(r, e);
            }
        }
        events.progress(bytes as u64, out.scanned - before);
    }
    out
}

/// One document's outcome in a streaming scan.
struct Evaluated {
    errors: Vec<LoadError>,
    resources: Vec<(Option<ResourceRef>, Evaluation)>,
}

/// One resource's outcome: the findings kept, the counts of all, and the final object when
/// the output wants mutated resources and something changed it.
struct Evaluation {
    found: Vec<Finding>,
    counts: Counts,
    mutated: Option<Value>,
}

impl Scan {
    /// Adds the next resource's outcome; `resource` is given when it has findings.
    fn add(&mut self, resource: Option<ResourceRef>, e: Evaluation) {
        let Evaluation { mut found, counts, mutated } = e;
        if let Some(m) = mutated {
            self.mutated.push((self.scanned, m));
        }
        self.scanned += 1;
        self.counts.merge(&counts);
        if let Some(r) = resource.filter(|_| !found.is_empty()) {
            let index = self.resources.len();
            self.resources.push(r);
            for f in &mut found {
                f.resource = index;
            }
            self.findings.append(&mut found);
        }
    }
}

/// What a scan computes once: per-policy keys and flags, and for policies that read the other
/// resources, those resources.
struct Prepared {
    policies: Vec<Compiled>,
    sources: Vec<Value>,
    cel: Option<CelScan>,
}

impl Prepared {
    /// `all` is the whole input, when it is held (see [`needs_whole_input`]).
    fn new(set: &PolicySet, cfg: &ScanConfig, all: Option<&[Resource]>) -> Prepared {
        let policies: Vec<Compiled> = set
            .policies
            .iter()
            .map(|p| Compiled {
                key: Arc::from(policy_key(p)),
                mutates: p.rules.iter().any(|r| matches!(r.body, RuleBody::Mutate(_))),
                generates: p.rules.iter().any(|r| matches!(r.body, RuleBody::Generate(_))),
                verifies: cfg.images.is_some() && images::has_image_rules(p),
            })
            .collect();
        let all = all.unwrap_or_default();
        // Generate rules may clone from the other resources of the scan, as Kyverno's CLI serves
        // them from the resources it was given; the copy is only made when a policy needs it.
        let sources: Vec<Value> = if policies.iter().any(|p| p.generates) { all.iter().map(|r| r.value.clone()).collect() } else { Vec::new() };
        // CEL policies may read the other resources (`resource.Get/List`) through the host,
        // which the CEL library finds in a thread-local; every worker installs the same one.
        let cel = (!set.cel_policies.is_empty() || !set.deleting_policies.is_empty()).then(|| CelScan {
            keys: set.cel_policies.iter().map(|p| Arc::from(cel_policy_key(p))).collect(),
            deleting_keys: set
                .deleting_policies
                .iter()
                .map(|p| Arc::from(p.namespace.as_ref().map_or_else(|| p.name.clone(), |ns| format!("{ns}/{}", p.name))))
                .collect(),
            inputs: crate::cel::CelInputs {
                host: Arc::new(palisade_stdlib::cel::Host { resources: all.iter().map(|r| r.value.clone()).collect(), ..Default::default() }),
                bindings: set.cel_bindings.clone(),
                exceptions: Vec::new(),
            },
        });
        Prepared { policies, sources, cel }
    }

    /// Every policy on one resource: its findings (without passes and skips unless the output
    /// lists them) and the counts of all its results. `Finding::resource` is set by the caller.
    fn evaluate(&self, set: &PolicySet, resource: &Resource, cfg: &ScanConfig) -> Evaluation {
        let (mut found, mutated) = scan_one(set, &self.policies, &self.sources, resource, cfg);
        if let Some(cel) = &self.cel {
            palisade_stdlib::cel::with_host(&cel.inputs.host, || scan_cel(set, cel, resource, cfg, &mut found));
        }
        let counts = Counts::of(&found);
        if !cfg.keep_passing {
            found.retain(|f| !matches!(f.status, Status::Pass | Status::Skip));
            found.shrink_to_fit();
        }
        Evaluation { found, counts, mutated: mutated.filter(|m| cfg.keep_mutated && *m != resource.value) }
    }
}

/// What the scan precomputes once per policy.
struct Compiled {
    key: Arc<str>,
    mutates: bool,
    generates: bool,
    /// The policy has `verifyImages` rules and the scan has a verifier.
    verifies: bool,
}

/// Mutation and generation first (each policy sees the object the policies before it left),
/// then image verification, then validation of the final object, as Kyverno orders an
/// admission request. Returns the findings and the final object when anything changed it.
fn scan_one(set: &PolicySet, policies: &[Compiled], sources: &[Value], resource: &Resource, cfg: &ScanConfig) -> (Vec<Finding>, Option<Value>) {
    let name = resource.name();
    let ns = engine::namespace_of(&resource.value).unwrap_or_default();
    let ns_labels = cfg.values.namespace_labels.get(ns);
    let mut out = Vec::new();
    let push = |out: &mut Vec<Finding>, key: &Arc<str>, r: crate::engine::RuleResult| {
        let scored = set.meta.get(&**key).is_none_or(|m| m.scored);
        let status = match r.status {
            Status::Fail if !scored || (cfg.audit_warn && !r.enforce) => Status::Warn,
            s => s,
        };
        out.push(Finding { resource: 0, policy: Arc::clone(key), rule: r.rule, status, message: r.message, enforce: r.enforce, scored });
    };
    let mut patched: Option<Value> = None;
    for (policy, c) in set.policies.iter().zip(policies) {
        if !c.mutates && !c.generates {
            continue;
        }
        let vars = cfg.values.for_resource(&policy.name, name);
        let object = patched.as_ref().unwrap_or(&resource.value);
        let req = runner::offline_request(object, cfg.user, ns_labels, &vars, cfg.values.for_rules(&policy.name));
        let mut results = Vec::new();
        let mut next = None;
        if c.mutates {
            let m = mutate::mutate(policy, &req);
            results.extend(m.results);
            next = Some(m.patched);
        }
        if c.generates {
            results.extend(mutate::generate::generate(policy, &req, sources).results);
        }
        for r in results {
            push(&mut out, &c.key, r);
        }
        if next.is_some() {
            patched = next;
        }
    }
    if let Some(verifier) = cfg.images {
        for (policy, c) in set.policies.iter().zip(policies) {
            if !c.verifies {
                continue;
            }
            let vars = cfg.values.for_resource(&policy.name, name);
            let object = patched.as_ref().unwrap_or(&resource.value);
            let req = runner::offline_request(object, cfg.user, ns_labels, &vars, cfg.values.for_rules(&policy.name));
            let outcome = verifier.verify(policy, &req);
            let mut next = None;
            if !outcome.patches.is_empty() {
                let mut copy = object.clone();
                match images::apply_patches(&mut copy, &outcome.patches) {
                    Ok(()) => next = Some(copy),
                    Err(e) => {
                        let rule = outcome.results.first().map(|r| r.rule.clone()).unwrap_or_default();
                        let enforce = outcome.results.first().is_some_and(|r| r.enforce);
                        let message = format!("failed to apply the image patches: {e}");
                        push(&mut out, &c.key, crate::engine::RuleResult { policy: policy.name.clone(), rule, status: Status::Error, message, enforce });
                    }
                }
            }
            for r in outcome.results {
                push(&mut out, &c.key, r);
            }
            if next.is_some() {
                patched = next;
            }
        }
    }
    let object = patched.as_ref().unwrap_or(&resource.value);
    // Policies the values file says nothing about see the same request, so they share one
    // evaluation (and one JMESPath context); the others get their own.
    let plain = runner::offline_request(object, cfg.user, ns_labels, &[], None);
    let mut shared = engine::Evaluation::new(&plain);
    for (policy, c) in set.policies.iter().zip(policies) {
        let vars = cfg.values.for_resource(&policy.name, name);
        let rule_variables = cfg.values.for_rules(&policy.name);
        let results = if vars.is_empty() && rule_variables.is_none() {
            shared.policy(policy)
        } else {
            let req = runner::offline_request(object, cfg.user, ns_labels, &vars, rule_variables);
            engine::evaluate(policy, &req)
        };
        match cfg.images {
            Some(verifier) if c.verifies => {
                // The interpreter reports image rules as needing a verifier; the verifier's
                // validate phase gives their results instead.
                let image_rule = |r: &crate::engine::RuleResult| policy.rules.iter().any(|x| x.name == r.rule && matches!(x.body, RuleBody::VerifyImages(_)));
                for r in results.into_iter().filter(|r| !image_rule(r)) {
                    push(&mut out, &c.key, r);
                }
                let req = runner::offline_request(object, cfg.user, ns_labels, &vars, rule_variables);
                for r in verifier.validate(policy, &req) {
                    push(&mut out, &c.key, r);
                }
            }
            _ => {
                for r in results {
                    push(&mut out, &c.key, r);
                }
            }
        }
    }
    (out, patched)
}

struct CelScan {
    keys: Vec<Arc<str>>,
    deleting_keys: Vec<Arc<str>>,
    inputs: crate::cel::CelInputs,
}

/// ValidatingPolicy, NamespacedValidatingPolicy and ValidatingAdmissionPolicy (with its
/// bindings), and DeletingPolicy, on one resource, as `palisade test` evaluates them.
fn scan_cel(set: &PolicySet, cel: &CelScan, resource: &Resource, cfg: &ScanConfig, out: &mut Vec<Finding>) {
    let ns = engine::namespace_of(&resource.value).unwrap_or_default();
    // Kyverno's CLI puts namespaced resources that name no namespace in `default`.
    let ns_for_object = if ns.is_empty() && !crate::cel::cluster_scoped(resource.kind()) { "default" } else { ns };
    let namespace_object = runner::namespace_object(ns_for_object, &cfg.values.namespaces, &cel.inputs.host.resources, cfg.values.namespace_labels.get(ns_for_object));
    let defaulted;
    let mut object = &resource.value;
    if ns.is_empty() && ns_for_object == "default" {
        let mut copy = resource.value.clone();
        if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("namespace".into(), Value::String("default".into()));
        }
        defaulted = copy;
        object = &defaulted;
    }
    for (policy, key) in set.cel_policies.iter().zip(&cel.keys) {
        let vars = cfg.values.for_resource(&policy.name, resource.name());
        let req = runner::offline_request(object, cfg.user, cfg.values.namespace_labels.get(ns_for_object), &vars, None);
        let b = crate::cel::bindings(&req, namespace_object.as_ref());
        let scored = set.meta.get(&**key).is_none_or(|m| m.scored);
        for r in crate::cel::evaluate_policy(policy, &req, &b, &cel.inputs, namespace_object.as_ref()) {
            let status = match r.status {
                Status::Fail if !scored || (cfg.audit_warn && !r.enforce) => Status::Warn,
                s => s,
            };
            out.push(Finding { resource: 0, policy: key.clone(), rule: r.rule, status, message: r.message, enforce: r.enforce, scored });
        }
    }
    // A deleting policy's verdict is whether the resource would be deleted: `pass` when it
    // matches. A resource it leaves alone is no violation, so the scan lists it as skipped
    // (`palisade test` keeps the CLI's `fail` for it).
    for (policy, key) in set.deleting_policies.iter().zip(&cel.deleting_keys) {
        let r = crate::cel::delete::evaluate(policy, object, &cel.inputs, namespace_object.as_ref());
        let status = if r.status == Status::Fail { Status::Skip } else { r.status };
        let message = if r.status == Status::Pass { format!("{}: {} would be deleted", r.message, resource_path(object)) } else { r.message };
        out.push(Finding { resource: 0, policy: key.clone(), rule: r.rule, status, message, enforce: false, scored: true });
    }
}

/// `kind/namespace/name` (the namespace part is left out for cluster-scoped resources), the
/// way Kyverno's CLI names a resource in its messages.
pub fn resource_path(value: &Value) -> String {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    match value.pointer("/metadata/namespace").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(ns) => format!("{ns}/{kind}/{name}"),
        None => format!("{kind}/{name}"),
    }
}
