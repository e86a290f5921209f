//! `validate.podSecurity`: runs the Pod Security Standards checks of a level and version on the
//! Pod (or the pod template of a controller), removes what the rule's exclusions allow, and words
//! the result as Kyverno does.
//!
//! Kyverno's algorithm for exclusions is followed step by step, because its observable result
//! depends on it: an exclusion re-runs the checks on a reduced pod (only the matching
//! containers, or the pod without its containers) and removes from the pod's own failures the
//! field errors that the reduced pod also produces, matched by field path with indexes replaced
//! by `*` (and, for container fields, by container name).

pub mod checks;
pub mod node;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use palisade_compiler::ir::podsecurity::{self as ir, Level, PodSecurity, Version};
use palisade_stdlib::wildcard;

use crate::engine::Status;
use checks::{BadValue, CHECKS, CheckDef, Containers, ErrorKind, FieldError, Pod};
use node::{List, Node};

/// One failed check: its id, Kubernetes' forbidden reason and detail, and the field errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub id: &'static str,
    pub reason: String,
    pub detail: String,
    pub errs: Vec<FieldError>,
}

/// Runs every check of `level` at `version` on a pod's metadata and spec, in Kubernetes'
/// order, and returns the failures. The privileged level has no checks.
///
/// Kyverno applies baseline checks alone for `baseline` and every check for `restricted`,
/// without Kubernetes' overrides (so a restricted failure of capabilities also reports the
/// baseline capabilities check when both fail).
pub fn evaluate_pod(level: Level, version: Version, meta: Node<'_>, spec: Node<'_>) -> Vec<CheckResult> {
    run_checks(level, version, &Pod::new(meta, spec), None)
}

/// The checks of `level` at `version` on `pod`, only those named in `only` when given.
fn run_checks(level: Level, version: Version, pod: &Pod<'_>, only: Option<&[&str]>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let wanted = |check: &CheckDef| in_level(level, check.level) && only.is_none_or(|ids| ids.contains(&check.id));
    run_each(version, pod, wanted, |_, _, r| out.push(r));
    out
}

/// Whether a check of level `check` belongs to `level`: the baseline level has the baseline
/// checks, the restricted level every check, the privileged level none.
fn in_level(level: Level, check: Level) -> bool {
    match level {
        Level::Privileged => false,
        Level::Baseline => check == Level::Baseline,
        Level::Restricted => true,
    }
}

/// Runs the checks `wanted` selects at `version` on `pod`, in the table's order, and hands each
/// failure to `found` with the check's index in [`CHECKS`] and its level.
fn run_each(version: Version, pod: &Pod<'_>, wanted: impl Fn(&CheckDef) -> bool, mut found: impl FnMut(usize, Level, CheckResult)) {
    let minor = match version {
        Version::Latest => None,
        Version::Minor(m) => Some(m),
    };
    for (index, check) in CHECKS.iter().enumerate() {
        if !wanted(check) {
            continue;
        }
        let Some(variant) = check.variant(minor) else { continue };
        if let Some(f) = variant(pod) {
            found(index, check.level, CheckResult { id: check.id, reason: f.reason, detail: f.detail, errs: f.errs });
        }
    }
}

/// The kinds whose pod sits in `spec.template`.
const TEMPLATE_KINDS: &[&str] = &["DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController"];

/// Where the pod metadata and spec of a resource of `kind` sit, as Kyverno reads them: a Pod's
/// own, the pod template of a workload controller, or the job template's pod of a CronJob
/// (whose metadata Kyverno takes from the job template, not from the pod template). `None` for
/// a kind that holds no pod, which the rule reports as an error.
pub fn pod_paths(kind: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    match kind {
        "Pod" => Some((&["metadata"], &["spec"])),
        k if TEMPLATE_KINDS.contains(&k) => Some((&["spec", "template", "metadata"], &["spec", "template", "spec"])),
        "CronJob" => Some((&["spec", "jobTemplate", "metadata"], &["spec", "jobTemplate", "spec", "template", "spec"])),
        _ => None,
    }
}

/// The empty object that stands for missing pod metadata or spec, so that a missing part is
/// not copied into a new value on every evaluation.
static EMPTY: LazyLock<Value> = LazyLock::new(|| Value::Object(Map::new()));

/// The one bare container of the reduced pod of a pod-level exclusion.
static FAKE_CONTAINER: LazyLock<Value> = LazyLock::new(|| json!({"name": "fake"}));

/// `value` when it is an object, otherwise (missing, null, another type) the empty object:
/// Kyverno decodes the pod parts into typed structs, where anything else reads as empty.
fn object_or_empty(value: Option<&Value>) -> &Value {
    value.filter(|v| v.is_object()).unwrap_or(&EMPTY)
}

/// [`object_or_empty`] for either view of the pod.
fn node_or_empty(node: Node<'_>) -> Node<'_> {
    if node.is_object() { node } else { Node::Json(&EMPTY) }
}

/// The pod metadata and spec of a resource (see [`pod_paths`]), borrowed from it.
pub fn pod_of(resource: &Value) -> Option<(&Value, &Value)> {
    let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
    let (meta, spec) = pod_paths(kind)?;
    let fetch = |path: &[&str]| path.iter().try_fold(resource, |v, key| v.get(key));
    Some((object_or_empty(fetch(meta)), object_or_empty(fetch(spec))))
}

/// Evaluates a `podSecurity` rule on a resource: Kyverno's status and message.
pub fn validate_rule(rule: &str, ps: &PodSecurity, resource: &Value) -> (Status, String) {
    let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
    match pod_of(resource) {
        Some((meta, spec)) => validate_pod(rule, ps, kind, Node::Json(meta), Node::Json(spec)),
        None => wrong_kind(),
    }
}

fn wrong_kind() -> (Status, String) {
    (Status::Error, "Error while getting new resource: could not find correct resource type".to_owned())
}

/// Evaluates a `podSecurity` rule on the pod of a resource of `kind` whose pod metadata and
/// spec (at [`pod_paths`]) are `meta` and `spec`: exactly what [`validate_rule`] gives for that
/// resource, for callers that hold the parts rather than the whole resource (the set engine
/// passes nodes of the request tape). A `meta` or `spec` that is not an object (null for a
/// missing one) reads as empty.
pub fn validate_pod(rule: &str, ps: &PodSecurity, kind: &str, meta: Node<'_>, spec: Node<'_>) -> (Status, String) {
    validate(rule, ps, kind, meta, spec, None)
}

/// The checks of one pod, run once and shared by the `podSecurity` rules that read the same
/// pod (the set engine keeps one per request). A check's result depends only on the pod and the
/// check's variant for the version, and the baseline checks are among the restricted level's,
/// so each check runs at most once per version, when the first rule of its level asks, and each
/// rule takes the failures of its level.
///
/// The failure texts are shared too: each failed check is worded once (its field paths
/// rewritten for the resource's kind), and each level's list of failures once, so a rule whose
/// exclusions excuse nothing that failed only writes its own prefix before the ready text, and
/// one whose exclusions do re-words only the checks they changed. A cache must only ever see
/// one pod, of one kind.
#[derive(Debug, Default)]
pub struct CheckCache {
    runs: RefCell<Vec<Run>>,
}

/// The checks run so far at one version, and their failures in the table's order.
#[derive(Debug)]
struct Run {
    version: Version,
    baseline: bool,
    restricted: bool,
    failures: Vec<Failed>,
    /// The words of every failure of the baseline level, then of the restricted level,
    /// concatenated; built on first use.
    level_texts: [Option<String>; 2],
}

/// One failed check of a [`Run`].
#[derive(Debug)]
struct Failed {
    /// The check's index in [`CHECKS`], which orders the failures.
    index: usize,
    level: Level,
    result: CheckResult,
    /// `(Forbidden reason: R, field error list: [E, E])`, with the field paths as the rule
    /// reports them for the resource's kind; built on first use.
    text: Option<String>,
}

impl Failed {
    fn text(&mut self, kind: &str) -> &str {
        let result = &self.result;
        self.text.get_or_insert_with(|| {
            let mut out = String::new();
            write_check_for_kind(&mut out, result, kind);
            out
        })
    }
}

impl Run {
    /// Runs the checks of `level` that have not run yet at this version.
    fn complete(&mut self, level: Level, pod: &Pod<'_>) {
        let restricted = level == Level::Restricted;
        let (baseline_done, restricted_done) = (self.baseline, self.restricted);
        if baseline_done && (!restricted || restricted_done) {
            return;
        }
        let missing = |check: &CheckDef| match check.level {
            Level::Baseline => !baseline_done,
            _ => restricted && !restricted_done,
        };
        let failures = &mut self.failures;
        run_each(self.version, pod, missing, |index, level, result| failures.push(Failed { index, level, result, text: None }));
        self.failures.sort_by_key(|f| f.index);
        self.baseline = true;
        self.restricted |= restricted;
    }

    /// The words of every failure of `level` (baseline or restricted), in the table's order.
    fn level_text(&mut self, level: Level, kind: &str) -> &str {
        let slot = usize::from(level == Level::Restricted);
        let failures = &mut self.failures;
        let Some(text) = self.level_texts.get_mut(slot) else { return "" };
        text.get_or_insert_with(|| {
            let mut out = String::new();
            for f in failures.iter_mut().filter(|f| in_level(level, f.level)) {
                out.push_str(f.text(kind));
            }
            out
        })
    }
}

impl CheckCache {
    /// [`validate`] for a pod of `kind` at its pod paths, through the shared checks and texts;
    /// `None` for a pass, whose message ([`passed`]) is written only by a caller that needs it.
    fn validate(&self, rule: &str, ps: &PodSecurity, kind: &str, pod: &Pod<'_>) -> Option<(Status, String)> {
        if ps.level == Level::Privileged {
            return None;
        }
        let mut runs = self.runs.borrow_mut();
        let index = match runs.iter().position(|r| r.version == ps.version) {
            Some(i) => i,
            None => {
                runs.push(Run { version: ps.version, baseline: false, restricted: false, failures: Vec::new(), level_texts: [None, None] });
                runs.len() - 1
            }
        };
        let Some(run) = runs.get_mut(index) else {
            return Some(validate(rule, ps, kind, pod.meta, pod.spec, None)).filter(|(status, _)| *status != Status::Pass);
        };
        run.complete(ps.level, pod);
        let level = ps.level;
        // The checks some exclusion of the rule may excuse; exclusions leave the others alone.
        let excusable = |id: &str| ps.exclude.iter().any(|e| ir::check_ids(&e.control_name).contains(&id));
        let failed = run.failures.iter().filter(|f| in_level(level, f.level));
        // No failure at this level: the rule passes.
        failed.clone().next()?;
        if !failed.clone().any(|f| excusable(f.result.id)) {
            let text = run.level_text(level, kind);
            let mut msg = failed_prefix(rule, ps, text.len());
            msg.push_str(text);
            return Some((Status::Fail, msg));
        }
        // Only the failures an exclusion may change are copied and run through the
        // exclusions; every other failure keeps its ready words.
        let mut changed: Vec<CheckResult> = failed.filter(|f| excusable(f.result.id)).map(|f| f.result.clone()).collect();
        for exclude in &ps.exclude {
            changed = apply_exclusion(ps, exclude, changed, pod);
        }
        let mut words = String::new();
        for f in run.failures.iter_mut().filter(|f| in_level(level, f.level)) {
            if !excusable(f.result.id) {
                words.push_str(f.text(kind));
                continue;
            }
            let Some(left) = changed.iter().find(|r| r.id == f.result.id) else { continue };
            // Exclusions only remove field errors, so a check with as many as before is
            // unchanged, in the same order.
            if left.errs.len() == f.result.errs.len() {
                words.push_str(f.text(kind));
            } else {
                write_check_for_kind(&mut words, left, kind);
            }
        }
        if words.is_empty() {
            return None;
        }
        let mut msg = failed_prefix(rule, ps, words.len());
        msg.push_str(&words);
        Some((Status::Fail, msg))
    }
}

fn passed(rule: &str) -> (Status, String) {
    (Status::Pass, passed_message(rule))
}

/// The message of a `podSecurity` rule that passes.
pub fn passed_message(rule: &str) -> String {
    format!("Validation rule '{rule}' passed.")
}

/// The start of a failed rule's message, with room for `more` bytes after it.
fn failed_prefix(rule: &str, ps: &PodSecurity, more: usize) -> String {
    let (level, version) = (ps.level.as_str(), ps.version_text.as_str());
    let mut msg = String::with_capacity(64 + rule.len() + level.len() + version.len() + more);
    msg.push_str("Validation rule '");
    msg.push_str(rule);
    msg.push_str("' failed. It violates PodSecurity \"");
    msg.push_str(level);
    msg.push(':');
    msg.push_str(version);
    msg.push_str("\": ");
    msg
}

/// [`validate_pod`] for a caller that runs several rules on the same pod: the checks are run
/// once per version for all of them, through `cache`, which must not be used for another pod.
pub fn validate_pod_cached(rule: &str, ps: &PodSecurity, kind: &str, meta: Node<'_>, spec: Node<'_>, cache: &CheckCache) -> (Status, String) {
    validate_pod_outcome(rule, ps, kind, meta, spec, cache).unwrap_or_else(|| passed(rule))
}

/// [`validate_pod_cached`] for a caller that does not read pass messages (the webhook answers
/// from failures alone): `None` when the rule passes, whose message [`passed_message`] gives.
pub fn validate_pod_outcome(rule: &str, ps: &PodSecurity, kind: &str, meta: Node<'_>, spec: Node<'_>, cache: &CheckCache) -> Option<(Status, String)> {
    validate_outcome_on(rule, ps, kind, &pod(meta, spec), cache)
}

/// The pod the checks read from a pod's metadata and spec (each read as empty when it is not
/// an object), for a caller that runs several rules on it ([`validate_outcome_on`]).
pub fn pod<'a>(meta: Node<'a>, spec: Node<'a>) -> Pod<'a> {
    Pod::new(node_or_empty(meta), node_or_empty(spec))
}

/// [`validate_pod_outcome`] on a pod built once by [`pod`] from the parts of a resource of `kind`.
pub fn validate_outcome_on(rule: &str, ps: &PodSecurity, kind: &str, pod: &Pod<'_>, cache: &CheckCache) -> Option<(Status, String)> {
    if pod_paths(kind).is_none() {
        return Some(wrong_kind());
    }
    cache.validate(rule, ps, kind, pod)
}

fn validate(rule: &str, ps: &PodSecurity, kind: &str, meta: Node<'_>, spec: Node<'_>, cache: Option<&CheckCache>) -> (Status, String) {
    if let Some(cache) = cache {
        return validate_pod_cached(rule, ps, kind, meta, spec, cache);
    }
    if pod_paths(kind).is_none() {
        return wrong_kind();
    }
    let pod = Pod::new(node_or_empty(meta), node_or_empty(spec));
    let mut results = run_checks(ps.level, ps.version, &pod, None);
    for exclude in &ps.exclude {
        results = apply_exclusion(ps, exclude, results, &pod);
    }
    if results.is_empty() {
        return passed(rule);
    }
    convert_fields(&mut results, kind);
    let mut msg = format!("Validation rule '{rule}' failed. It violates PodSecurity \"{}:{}\": ", ps.level.as_str(), ps.version_text);
    write_checks(&mut msg, &results);
    (Status::Fail, msg)
}

/// One exclusion. Without images it concerns pod-level fields: the checks run on the pod with
/// a single bare container instead of its own. With images it concerns the containers whose
/// image matches: the checks run on a pod holding only those containers (and, of its metadata,
/// only the name and namespace, which no check reads, so an empty metadata stands for it).
///
/// Only the checks of the exclusion's control are run on the reduced pod, because only their
/// failures can excuse anything; when the pod fails none of them there is nothing to do.
fn apply_exclusion(ps: &PodSecurity, exclude: &ir::Exclude, defaults: Vec<CheckResult>, pod: &Pod<'_>) -> Vec<CheckResult> {
    let ids = ir::check_ids(&exclude.control_name);
    if !defaults.iter().any(|d| ids.contains(&d.id)) {
        return defaults;
    }
    if exclude.images.is_empty() {
        let fake = List::Json(std::slice::from_ref(&*FAKE_CONTAINER));
        let reduced = Pod { meta: pod.meta, spec: pod.spec, lists: [Containers::EMPTY, Containers::List(fake), Containers::EMPTY] };
        let found = run_checks(ps.level, ps.version, &reduced, Some(ids));
        exempt(defaults, &found, exclude, pod, None)
    } else {
        let [init, containers, ephemeral] = pod.lists.map(|list| matching(list, &exclude.images));
        let lists = [Containers::Picked(&init), Containers::Picked(&containers), Containers::Picked(&ephemeral)];
        let reduced = Pod { meta: Node::Json(&EMPTY), spec: Node::Json(&EMPTY), lists };
        let found = run_checks(ps.level, ps.version, &reduced, Some(ids));
        exempt(defaults, &found, exclude, pod, Some(&reduced))
    }
}

/// The containers of `list` whose image matches one of `images`.
fn matching<'a>(list: Containers<'a>, images: &[String]) -> Vec<Node<'a>> {
    list.iter()
        .filter(|c| {
            let image = c.get("image").and_then(Node::as_str).unwrap_or_default();
            images.iter().any(|p| wildcard::matches(p, image))
        })
        .collect()
}

/// A field path read the way Kyverno splits it: with indexes replaced by `*` (its "starred"
/// form, compared without being built), its first index, and whether the field belongs to a
/// container (its second word is a container list).
struct ParsedField<'f> {
    field: &'f str,
    first_index: usize,
    container_kind: &'f str,
}

impl<'f> ParsedField<'f> {
    fn parse(field: &'f str) -> ParsedField<'f> {
        let bytes = field.as_bytes();
        let mut first_index = None;
        let mut words = 0;
        let mut container_kind = "";
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            let start = i;
            if b.is_ascii_digit() {
                while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                if first_index.is_none() {
                    first_index = Some(field.get(start..i).and_then(|d| d.parse().ok()).unwrap_or(usize::MAX));
                }
            } else if b.is_ascii_alphabetic() {
                while bytes.get(i).is_some_and(u8::is_ascii_alphabetic) {
                    i += 1;
                }
                words += 1;
                if words == 2 {
                    container_kind = field.get(start..i).unwrap_or_default();
                }
            } else {
                i += 1;
            }
        }
        ParsedField { field, first_index: first_index.unwrap_or(usize::MAX), container_kind }
    }

    /// The path's bytes with every run of digits replaced by one `*`.
    fn starred(&self) -> impl Iterator<Item = u8> + '_ {
        let bytes = self.field.as_bytes();
        bytes.iter().enumerate().filter(move |&(i, b)| !(b.is_ascii_digit() && i > 0 && bytes.get(i - 1).is_some_and(u8::is_ascii_digit))).map(|(_, &b)| if b.is_ascii_digit() { b'*' } else { b })
    }

    /// Whether the starred form is `text`.
    fn starred_is(&self, text: &str) -> bool {
        self.starred().eq(text.bytes())
    }

    /// Whether two paths have the same starred form.
    fn same_starred(&self, other: &ParsedField<'_>) -> bool {
        self.starred().eq(other.starred())
    }

    fn is_container(&self) -> bool {
        matches!(self.container_kind, "containers" | "initContainers" | "ephemeralContainers")
    }

    /// The name of the container this field belongs to in `pod`.
    fn container_name<'p>(&self, pod: &Pod<'p>) -> &'p str {
        pod.list(self.container_kind).get(self.first_index).and_then(|c| c.get("name")).and_then(Node::as_str).unwrap_or_default()
    }
}

/// The offending values of a field error, as strings, for `values` wildcards.
fn bad_values(err: &FieldError) -> Vec<String> {
    match &err.bad {
        BadValue::Str(s) if s.is_empty() => Vec::new(),
        BadValue::Str(s) => vec![s.clone()],
        BadValue::Bool(b) => vec![b.to_string()],
        BadValue::Int(i) => vec![i.to_string()],
        BadValue::List(l) => l.clone(),
    }
}

/// Removes from `defaults` the field errors that `found` (the reduced pod's failures) excuses,
/// for the checks of the exclusion's control; a check left without errors passes.
fn exempt(mut defaults: Vec<CheckResult>, found: &[CheckResult], exclude: &ir::Exclude, pod: &Pod<'_>, matching: Option<&Pod<'_>>) -> Vec<CheckResult> {
    let container_level = matching.is_some();
    let ids = ir::check_ids(&exclude.control_name);
    for excluded in found.iter().filter(|r| ids.contains(&r.id)) {
        for err in &excluded.errs {
            let parsed = ParsedField::parse(&err.field);
            let excluded_container = match matching {
                Some(m) if parsed.is_container() => parsed.container_name(m),
                _ => "",
            };
            if !(exclude.restricted_field.is_empty() || parsed.starred_is(&exclude.restricted_field)) {
                continue;
            }
            if !exclude.values.is_empty() && !bad_values(err).iter().all(|v| exclude.values.iter().any(|p| wildcard::matches(p, v))) {
                continue;
            }
            let Some(pos) = defaults.iter().position(|d| d.id == excluded.id) else { continue };
            let Some(default) = defaults.get_mut(pos) else { continue };
            let hit = default.errs.iter().position(|d| {
                let own = ParsedField::parse(&d.field);
                if container_level && own.is_container() {
                    own.same_starred(&parsed) && own.container_name(pod) == excluded_container
                } else {
                    own.same_starred(&parsed)
                }
            });
            if let Some(i) = hit {
                // Kyverno removes by moving the last error into the hole; the order of what
                // remains shows in the message, so do the same.
                default.errs.swap_remove(i);
            }
            if default.errs.is_empty() {
                defaults.remove(pos);
            }
        }
    }
    defaults
}

/// Kyverno reports fields of a controller's pod template with the template's prefix: it
/// replaces every `spec` in the path (and, for every kind, `metadata`) textually.
fn convert_fields(results: &mut [CheckResult], kind: &str) {
    let spec_prefix = spec_prefix(kind);
    for r in results {
        for e in &mut r.errs {
            // `replace` copies the string even when nothing matches; most paths hold no
            // `metadata`, and a bare Pod's none of the rewrites.
            if let Some(p) = spec_prefix.filter(|_| e.field.contains("spec")) {
                e.field = e.field.replace("spec", p);
            }
            if e.field.contains("metadata") {
                e.field = e.field.replace("metadata", "spec.template.metadata");
            }
        }
    }
}

/// What every `spec` of a field path becomes for a resource of `kind`: the path of its pod
/// spec, or nothing for a bare Pod.
fn spec_prefix(kind: &str) -> Option<&'static str> {
    match kind {
        "CronJob" => Some("spec.jobTemplate.spec.template.spec"),
        k if TEMPLATE_KINDS.contains(&k) => Some("spec.template.spec"),
        _ => None,
    }
}

/// A field path as [`convert_fields`] rewrites it for `spec_prefix`, appended to `out` in one
/// pass. The two replacements cannot interact: `spec` and `metadata` share no letters at their
/// ends (so neither overlaps the other), the spec prefixes hold no `metadata`, and no
/// `metadata` can span the edge of an inserted prefix (which starts with `s` and ends with
/// `c`); so rewriting each occurrence in the original path gives what the two `replace`
/// calls in a row give.
fn write_field(out: &mut String, field: &str, spec_prefix: Option<&str>) {
    let mut rest = field;
    while let Some(at) = rest.find(['s', 'm']) {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        if let (Some(p), Some(after)) = (spec_prefix, from.strip_prefix("spec")) {
            out.push_str(p);
            rest = after;
        } else if let Some(after) = from.strip_prefix("metadata") {
            out.push_str("spec.template.metadata");
            rest = after;
        } else {
            // The letter found is ASCII, one byte.
            out.push_str(from.get(..1).unwrap_or_default());
            rest = from.get(1..).unwrap_or_default();
        }
    }
    out.push_str(rest);
}

/// One failed check as [`write_checks`] words it after [`convert_fields`] for `kind`, without
/// copying its field paths.
fn write_check_for_kind(out: &mut String, r: &CheckResult, kind: &str) {
    let prefix = spec_prefix(kind);
    write_check(out, r, |out, field| write_field(out, field, prefix));
}

/// One check in Kyverno's words, each field path written by `field`.
fn write_check(out: &mut String, r: &CheckResult, field: impl Fn(&mut String, &str)) {
    out.push_str("(Forbidden reason: ");
    out.push_str(&r.reason);
    out.push_str(", field error list: [");
    for (i, e) in r.errs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        field(out, &e.field);
        write_error_tail(out, e);
    }
    out.push_str("])");
}

/// Go's `%+v` of a field error's value, appended to `out`.
fn write_go_value(out: &mut String, v: &BadValue) {
    match v {
        BadValue::Str(s) => out.push_str(s),
        BadValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        BadValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        BadValue::List(items) => {
            out.push('[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(' ');
                }
                out.push_str(item);
            }
            out.push(']');
        }
    }
}

/// One field error as Kyverno prints it.
pub fn format_error(e: &FieldError) -> String {
    let mut out = String::new();
    write_error(&mut out, e);
    out
}

fn write_error(out: &mut String, e: &FieldError) {
    out.push_str(&e.field);
    write_error_tail(out, e);
}

/// What follows the field path in a field error's words.
fn write_error_tail(out: &mut String, e: &FieldError) {
    match (e.kind, &e.bad) {
        (ErrorKind::Forbidden, BadValue::Str(s)) if s.is_empty() => out.push_str(": Forbidden"),
        (ErrorKind::Forbidden, bad) => {
            out.push_str(" is forbidden, forbidden values found: ");
            write_go_value(out, bad);
        }
        (ErrorKind::Required, _) => out.push_str(": Required value"),
    }
}

/// Kyverno's `FormatChecksPrint`: `(Forbidden reason: R, field error list: [E, E])` per check.
pub fn format_checks(results: &[CheckResult]) -> String {
    let mut out = String::new();
    write_checks(&mut out, results);
    out
}

/// [`format_checks`] appended to `out`, with no string per error.
fn write_checks(out: &mut String, results: &[CheckResult]) {
    for r in results {
        write_check(out, r, |out, field| out.push_str(field));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use std::path::{Path, PathBuf};

    use super::*;
    use crate::cli::runner::{expand_list, load_documents};
    use crate::doc::{Doc, KeyTable};

    /// `../shared/corpus/kyverno-policies/pod-security`, read in place.
    fn corpus() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/kyverno-policies/pod-security")
    }

    /// Every document of the files under `dir` whose name passes `keep`, in path order.
    fn documents(dir: &Path, keep: &dyn Fn(&str) -> bool, out: &mut Vec<Value>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                documents(&p, keep, out);
            } else if name.ends_with(".yaml") && keep(&name) {
                for d in load_documents(&p).unwrap() {
                    expand_list(d, out);
                }
            }
        }
    }

    /// The `podSecurity` rules the tests run: every one of the corpus' pod-security policies;
    /// every level at versions where checks change, without exclusions; and, for every
    /// control, a restricted rule excluding it at pod level and for images matching `*`, or a
    /// pattern only some corpus images match.
    fn rules() -> Vec<PodSecurity> {
        let mut policies = Vec::new();
        documents(&corpus(), &|name| !name.starts_with("resource") && !name.starts_with("kyverno-test"), &mut policies);
        let mut rules: Vec<PodSecurity> = policies
            .iter()
            .filter(|p| p.get("kind").and_then(Value::as_str) == Some("ClusterPolicy"))
            .flat_map(|p| p.pointer("/spec/rules").and_then(Value::as_array).cloned().unwrap_or_default())
            .filter_map(|r| r.pointer("/validate/podSecurity").map(|ps| ir::lower(ps).unwrap()))
            .collect();
        assert!(rules.len() >= 4, "the corpus' podSecurity rules were not found ({} found)", rules.len());
        for level in ["privileged", "baseline", "restricted"] {
            for version in ["latest", "v1.0", "v1.19", "v1.22", "v1.23", "v1.25", "v1.27", "v1.29", "v1.31", "v1.34"] {
                rules.push(ir::lower(&json!({"level": level, "version": version})).unwrap());
            }
        }
        for (control, _) in ir::CONTROLS {
            for images in [json!(null), json!(["*"]), json!(["nginx*", "*busybox*"])] {
                let mut exclude = json!({"controlName": control});
                if !images.is_null() {
                    exclude["images"] = images;
                }
                // A control of pod fields cannot name images, and one of container fields must;
                // the combinations that do not lower are left out.
                if let Ok(ps) = ir::lower(&json!({"level": "restricted", "version": "latest", "exclude": [exclude]})) {
                    rules.push(ps);
                }
            }
        }
        rules
    }

    fn resources() -> Vec<Value> {
        let mut out = Vec::new();
        documents(&corpus(), &|name| name.starts_with("resource"), &mut out);
        out
    }

    /// An exclusion as the code did it before the pod views: the reduced pod built as a JSON
    /// document and every check of the level run on it. The views must give the same result.
    fn exclusion_as_json(ps: &PodSecurity, exclude: &ir::Exclude, defaults: Vec<CheckResult>, meta: &Value, spec: &Value) -> Vec<CheckResult> {
        let pod = Pod::new(Node::Json(meta), Node::Json(spec));
        if exclude.images.is_empty() {
            let mut reduced = spec.clone();
            let m = reduced.as_object_mut().unwrap();
            m.insert("containers".into(), json!([{"name": "fake"}]));
            m.remove("initContainers");
            m.remove("ephemeralContainers");
            let found = evaluate_pod(ps.level, ps.version, Node::Json(meta), Node::Json(&reduced));
            exempt(defaults, &found, exclude, &pod, None)
        } else {
            let mut reduced_meta = Map::new();
            for key in ["name", "namespace"] {
                if let Some(v) = meta.get(key) {
                    reduced_meta.insert(key.into(), v.clone());
                }
            }
            let mut reduced = Map::new();
            for kind in checks::CONTAINER_KINDS {
                let list = pod.list(kind);
                let picked: Vec<Value> = matching(list, &exclude.images).into_iter().map(Node::to_value).collect();
                if !picked.is_empty() {
                    reduced.insert(kind.into(), Value::Array(picked));
                }
            }
            let (reduced_meta, reduced) = (Value::Object(reduced_meta), Value::Object(reduced));
            let found = evaluate_pod(ps.level, ps.version, Node::Json(&reduced_meta), Node::Json(&reduced));
            exempt(defaults, &found, exclude, &pod, Some(&Pod::new(Node::Json(&reduced_meta), Node::Json(&reduced))))
        }
    }

    /// The pod parts of the resource at the root of `doc`, fetched as the set engine fetches
    /// them: node 0 (a null) for a missing part.
    fn tape_parts<'d>(doc: &'d Doc<'d>, kind: &str) -> (Node<'d>, Node<'d>) {
        let fetch = |path: &[&str]| Node::Tape(doc, doc.path(doc.root(), path).unwrap_or(0));
        pod_paths(kind).map_or((Node::Tape(doc, 0), Node::Tape(doc, 0)), |(m, s)| (fetch(m), fetch(s)))
    }

    /// `validate_pod` on the parts a caller fetches at `pod_paths`, as `Value`s and as nodes of
    /// the resource parsed into a tape (also through one `CheckCache` shared by every rule, the
    /// rules mixing levels and versions), gives what `validate_rule` gives on the whole resource,
    /// and the exclusions evaluated on views (of either kind) give what they give on reduced pods
    /// built as JSON, for every corpus resource and rule.
    #[test]
    fn validate_pod_agrees_with_validate_rule_on_the_corpus() {
        let resources = resources();
        let rules = rules();
        assert!(resources.len() >= 22, "the corpus resources were not found ({} found)", resources.len());
        let (mut passed, mut failed, mut excused, mut errors) = (0, 0, 0, 0);
        for resource in &resources {
            let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
            let name = resource.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            let fetch = |path: &[&str]| path.iter().try_fold(resource, |v, key| v.get(key)).unwrap_or(&Value::Null);
            let (meta, spec) = pod_paths(kind).map(|(m, s)| (fetch(m), fetch(s))).unwrap_or((&Value::Null, &Value::Null));
            let text = serde_json::to_vec(resource).unwrap();
            let doc = Doc::parse(&text, &KeyTable::default()).unwrap();
            let (tape_meta, tape_spec) = tape_parts(&doc, kind);
            // One cache for every rule on this resource, as the set engine keeps one per request.
            let cache = CheckCache::default();
            for ps in &rules {
                let want = validate_rule("check", ps, resource);
                let got = validate_pod("check", ps, kind, Node::Json(meta), Node::Json(spec));
                assert_eq!(got, want, "{kind} {name} with {ps:?}");
                let on_tape = validate_pod("check", ps, kind, tape_meta, tape_spec);
                assert_eq!(on_tape, want, "{kind} {name} on the tape with {ps:?}");
                let cached = validate_pod_cached("check", ps, kind, tape_meta, tape_spec, &cache);
                assert_eq!(cached, want, "{kind} {name} on the tape with a shared cache, {ps:?}");
                match want.0 {
                    Status::Pass => passed += 1,
                    Status::Fail => failed += 1,
                    _ => errors += 1,
                }
                let Some((meta, spec)) = pod_of(resource) else { continue };
                let pod = Pod::new(Node::Json(meta), Node::Json(spec));
                let tape_pod = Pod::new(node_or_empty(tape_meta), node_or_empty(tape_spec));
                let mut by_view = run_checks(ps.level, ps.version, &pod, None);
                let mut by_tape = run_checks(ps.level, ps.version, &tape_pod, None);
                assert_eq!(by_tape, by_view, "{kind} {name} on the tape");
                let mut by_json = by_view.clone();
                for exclude in &ps.exclude {
                    let before = by_view.iter().map(|r| r.errs.len()).sum::<usize>();
                    by_view = apply_exclusion(ps, exclude, by_view, &pod);
                    by_tape = apply_exclusion(ps, exclude, by_tape, &tape_pod);
                    by_json = exclusion_as_json(ps, exclude, by_json, meta, spec);
                    assert_eq!(by_view, by_json, "{kind} {name} excluding {exclude:?}");
                    assert_eq!(by_tape, by_json, "{kind} {name} on the tape excluding {exclude:?}");
                    if by_view.iter().map(|r| r.errs.len()).sum::<usize>() < before {
                        excused += 1;
                    }
                }
            }
        }
        // The corpus exercises every outcome; a walk that found nothing to compare would pass
        // vacuously.
        assert!(passed > 0 && failed > 0 && excused > 0, "passed {passed}, failed {failed}, excused {excused}, errors {errors}");
    }

    /// The one-pass rewrite of field paths gives what the two `replace` calls of
    /// `convert_fields` give, on paths whose words touch, repeat or sit inside other words.
    #[test]
    fn write_field_agrees_with_convert_fields() {
        let fields = [
            "spec.containers[0].securityContext.privileged",
            "metadata.annotations[container.apparmor.security.beta.kubernetes.io/nginx]",
            "specmetadataspec",
            "metametadatadata.spespec.sspecc",
            "spec.volumes[2].hostPath",
            "",
            "s",
            "m",
            "é.spec.ü.metadata",
        ];
        for kind in ["Pod", "Deployment", "CronJob", "Service"] {
            for field in fields {
                let err = FieldError { kind: ErrorKind::Required, field: field.to_owned(), bad: BadValue::Str(String::new()) };
                let mut results = [CheckResult { id: "x", reason: "r".into(), detail: String::new(), errs: vec![err] }];
                let mut written = String::new();
                write_check_for_kind(&mut written, &results[0], kind);
                convert_fields(&mut results, kind);
                assert_eq!(written, format_checks(&results), "{field} in a {kind}");
            }
        }
    }

    /// Field paths are split as Kyverno splits them: digit runs starred, the first index, and
    /// the second word naming the container list.
    #[test]
    fn parsed_fields() {
        let cases = [
            ("spec.containers[12].securityContext.capabilities.add", "spec.containers[*].securityContext.capabilities.add", 12, true),
            ("spec.initContainers[0].ports[3].hostPort", "spec.initContainers[*].ports[*].hostPort", 0, true),
            ("spec.hostNetwork", "spec.hostNetwork", usize::MAX, false),
            ("spec.volumes[7].hostPath", "spec.volumes[*].hostPath", 7, false),
            ("a1b22c", "a*b*c", 1, false),
            ("spec.containers[99999999999999999999999]", "spec.containers[*]", usize::MAX, true),
        ];
        for (field, starred, index, container) in cases {
            let parsed = ParsedField::parse(field);
            assert!(parsed.starred_is(starred), "{field}: {:?}", String::from_utf8_lossy(&parsed.starred().collect::<Vec<u8>>()));
            assert!(parsed.same_starred(&ParsedField::parse(starred)), "{field}");
            assert_eq!((parsed.first_index, parsed.is_container()), (index, container), "{field}");
        }
    }

    /// Resources written as JSON text with what the YAML corpus cannot hold (`tests/data/
    /// podsecurity_json_corners.jsonl`, one resource a line, `#` lines are comments): repeated
    /// keys, escaped strings, numbers in every JSON form, pod parts of the wrong type, large
    /// annotation maps. On the tape, every rule gives what it gives on the `Value` serde_json
    /// parses from the same text.
    #[test]
    fn the_tape_agrees_with_serde_json_on_json_corners() {
        let text = include_str!("../../tests/data/podsecurity_json_corners.jsonl");
        let rules = rules();
        let (mut lines, mut passed, mut failed) = (0, 0, 0);
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            lines += 1;
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            let doc = Doc::parse(line.as_bytes(), &KeyTable::default()).unwrap();
            let kind = value.get("kind").and_then(Value::as_str).unwrap_or_default();
            let (meta, spec) = tape_parts(&doc, kind);
            for ps in &rules {
                let want = validate_rule("check", ps, &value);
                let got = validate_pod("check", ps, kind, meta, spec);
                assert_eq!(got, want, "line {} with {ps:?}", i + 1);
                match want.0 {
                    Status::Pass => passed += 1,
                    Status::Fail => failed += 1,
                    _ => {}
                }
            }
        }
        assert!(lines >= 10 && passed > 0 && failed > 0, "lines {lines}, passed {passed}, failed {failed}");
    }
}
