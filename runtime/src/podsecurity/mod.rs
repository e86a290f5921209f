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

use serde_json::{Map, Value, json};

use palisade_compiler::ir::podsecurity::{self as ir, Level, PodSecurity, Version};
use palisade_stdlib::wildcard;

use crate::engine::Status;
use checks::{BadValue, CHECKS, ErrorKind, FieldError};

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
pub fn evaluate_pod(level: Level, version: Version, meta: &Value, spec: &Value) -> Vec<CheckResult> {
    let minor = match version {
        Version::Latest => None,
        Version::Minor(m) => Some(m),
    };
    let mut out = Vec::new();
    for check in CHECKS {
        let applies = match level {
            Level::Privileged => false,
            Level::Baseline => check.level == Level::Baseline,
            Level::Restricted => true,
        };
        let Some(variant) = check.variant(minor).filter(|_| applies) else { continue };
        if let Some(f) = variant(meta, spec) {
            out.push(CheckResult { id: check.id, reason: f.reason, detail: f.detail, errs: f.errs });
        }
    }
    out
}

/// The pod metadata and spec of a resource, as Kyverno reads them: a Pod's own, the pod
/// template of a workload controller, or the job template's pod of a CronJob (whose metadata
/// Kyverno takes from the job template, not from the pod template).
pub fn pod_of(resource: &Value) -> Option<(Value, Value)> {
    let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
    let (meta, spec) = match kind {
        "Pod" => (resource.get("metadata"), resource.get("spec")),
        "DaemonSet" | "Deployment" | "Job" | "StatefulSet" | "ReplicaSet" | "ReplicationController" => {
            let t = resource.pointer("/spec/template");
            (t.and_then(|t| t.get("metadata")), t.and_then(|t| t.get("spec")))
        }
        "CronJob" => (resource.pointer("/spec/jobTemplate/metadata"), resource.pointer("/spec/jobTemplate/spec/template/spec")),
        _ => return None,
    };
    let obj = |v: Option<&Value>| v.filter(|v| v.is_object()).cloned().unwrap_or_else(|| Value::Object(Map::new()));
    Some((obj(meta), obj(spec)))
}

/// Evaluates a `podSecurity` rule on a resource: Kyverno's status and message.
pub fn validate_rule(rule: &str, ps: &PodSecurity, resource: &Value) -> (Status, String) {
    let Some((meta, spec)) = pod_of(resource) else {
        return (Status::Error, "Error while getting new resource: could not find correct resource type".to_owned());
    };
    let mut results = evaluate_pod(ps.level, ps.version, &meta, &spec);
    for exclude in &ps.exclude {
        results = apply_exclusion(ps, exclude, results, &meta, &spec);
    }
    if results.is_empty() {
        return (Status::Pass, format!("Validation rule '{rule}' passed."));
    }
    let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
    convert_fields(&mut results, kind);
    let msg = format!("Validation rule '{rule}' failed. It violates PodSecurity \"{}:{}\": {}", ps.level.as_str(), ps.version_text, format_checks(&results));
    (Status::Fail, msg)
}

/// One exclusion. Without images it concerns pod-level fields: the checks run on the pod with
/// a single bare container instead of its own. With images it concerns the containers whose
/// image matches: the checks run on a pod holding only those containers.
fn apply_exclusion(ps: &PodSecurity, exclude: &ir::Exclude, defaults: Vec<CheckResult>, meta: &Value, spec: &Value) -> Vec<CheckResult> {
    if exclude.images.is_empty() {
        let mut reduced = spec.clone();
        if let Value::Object(m) = &mut reduced {
            m.insert("containers".into(), json!([{"name": "fake"}]));
            m.remove("initContainers");
            m.remove("ephemeralContainers");
        }
        let found = evaluate_pod(ps.level, ps.version, meta, &reduced);
        exempt(defaults, &found, exclude, spec, None)
    } else {
        let mut reduced_meta = Map::new();
        for key in ["name", "namespace"] {
            if let Some(v) = meta.get(key) {
                reduced_meta.insert(key.into(), v.clone());
            }
        }
        let mut reduced = Map::new();
        for kind in ["containers", "initContainers", "ephemeralContainers"] {
            let matching: Vec<Value> = spec
                .get(kind)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|c| {
                    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                    exclude.images.iter().any(|p| wildcard::matches(p, image))
                })
                .cloned()
                .collect();
            if !matching.is_empty() {
                reduced.insert(kind.into(), Value::Array(matching));
            }
        }
        let reduced = Value::Object(reduced);
        let found = evaluate_pod(ps.level, ps.version, &Value::Object(reduced_meta), &reduced);
        exempt(defaults, &found, exclude, spec, Some(&reduced))
    }
}

/// A field path split the way Kyverno splits it: indexes replaced by `*`, the indexes, and
/// whether the field belongs to a container (its second word is a container list).
struct ParsedField {
    starred: String,
    indexes: Vec<usize>,
    container_kind: String,
}

impl ParsedField {
    fn parse(field: &str) -> ParsedField {
        let mut starred = String::with_capacity(field.len());
        let mut indexes = Vec::new();
        let mut words = Vec::new();
        let mut chars = field.char_indices().peekable();
        while let Some((start, ch)) = chars.next() {
            if ch.is_ascii_digit() {
                let mut end = start + 1;
                while let Some(&(i, c)) = chars.peek() {
                    if !c.is_ascii_digit() {
                        break;
                    }
                    end = i + 1;
                    chars.next();
                }
                starred.push('*');
                indexes.push(field.get(start..end).and_then(|d| d.parse().ok()).unwrap_or(usize::MAX));
            } else if ch.is_ascii_alphabetic() {
                let mut end = start + 1;
                while let Some(&(i, c)) = chars.peek() {
                    if !c.is_ascii_alphabetic() {
                        break;
                    }
                    end = i + 1;
                    chars.next();
                }
                let word = field.get(start..end).unwrap_or_default();
                starred.push_str(word);
                words.push(word);
            } else {
                starred.push(ch);
            }
        }
        let container_kind = words.get(1).copied().unwrap_or_default().to_owned();
        ParsedField { starred, indexes, container_kind }
    }

    fn is_container(&self) -> bool {
        matches!(self.container_kind.as_str(), "containers" | "initContainers" | "ephemeralContainers")
    }

    /// The name of the container this field belongs to in `spec`.
    fn container_name(&self, spec: &Value) -> String {
        let index = self.indexes.first().copied().unwrap_or(usize::MAX);
        spec.get(&self.container_kind)
            .and_then(Value::as_array)
            .and_then(|a| a.get(index))
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
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
fn exempt(mut defaults: Vec<CheckResult>, found: &[CheckResult], exclude: &ir::Exclude, pod_spec: &Value, matching: Option<&Value>) -> Vec<CheckResult> {
    let container_level = matching.is_some();
    let ids = ir::check_ids(&exclude.control_name);
    for excluded in found.iter().filter(|r| ids.contains(&r.id)) {
        for err in &excluded.errs {
            let parsed = ParsedField::parse(&err.field);
            let excluded_container = match matching {
                Some(m) if parsed.is_container() => parsed.container_name(m),
                _ => String::new(),
            };
            if !(exclude.restricted_field.is_empty() || parsed.starred == exclude.restricted_field) {
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
                    own.starred == parsed.starred && own.container_name(pod_spec) == excluded_container
                } else {
                    own.starred == parsed.starred
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
    let spec_prefix = match kind {
        "DaemonSet" | "Deployment" | "Job" | "StatefulSet" | "ReplicaSet" | "ReplicationController" => Some("spec.template.spec"),
        "CronJob" => Some("spec.jobTemplate.spec.template.spec"),
        _ => None,
    };
    for r in results {
        for e in &mut r.errs {
            if let Some(p) = spec_prefix {
                e.field = e.field.replace("spec", p);
            }
            e.field = e.field.replace("metadata", "spec.template.metadata");
        }
    }
}

/// Go's `%+v` of a field error's value.
fn go_value(v: &BadValue) -> String {
    match v {
        BadValue::Str(s) => s.clone(),
        BadValue::Bool(b) => b.to_string(),
        BadValue::Int(i) => i.to_string(),
        BadValue::List(l) => format!("[{}]", l.join(" ")),
    }
}

/// One field error as Kyverno prints it.
pub fn format_error(e: &FieldError) -> String {
    match (e.kind, &e.bad) {
        (ErrorKind::Forbidden, BadValue::Str(s)) if s.is_empty() => format!("{}: Forbidden", e.field),
        (ErrorKind::Forbidden, bad) => format!("{} is forbidden, forbidden values found: {}", e.field, go_value(bad)),
        (ErrorKind::Required, _) => format!("{}: Required value", e.field),
    }
}

/// Kyverno's `FormatChecksPrint`: `(Forbidden reason: R, field error list: [E, E])` per check.
pub fn format_checks(results: &[CheckResult]) -> String {
    results
        .iter()
        .map(|r| format!("(Forbidden reason: {}, field error list: [{}])", r.reason, r.errs.iter().map(format_error).collect::<Vec<_>>().join(", ")))
        .collect()
}
