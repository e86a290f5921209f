//! Autogen: Kyverno's expansion of Pod rules to the Pod controllers.
//!
//! A policy whose rules all match only `Pod` (no names, selectors or annotations) and that has
//! no generate or JSON-patch rule gets, for each Pod rule, `autogen-<rule>` matching the
//! controllers with a `spec.template` (Deployment, DaemonSet, StatefulSet, Job, ReplicaSet,
//! ReplicationController) and `autogen-cronjob-<rule>` matching CronJob. Patterns are wrapped in
//! the template path, and references to `request.object.spec`/`.metadata` in the rest of the
//! rule are rewritten textually, exactly as Kyverno does. The annotation
//! `pod-policies.kyverno.io/autogen-controllers` narrows the controllers (`none` disables).
//!
//! This works on the policy's JSON form, because Kyverno's rewrite is textual.

use serde_json::{Map, Value, json};

pub const ANNOTATION: &str = "pod-policies.kyverno.io/autogen-controllers";

/// The controllers autogen targets, in Kyverno's order, excluding CronJob.
pub const TEMPLATE_CONTROLLERS: [&str; 6] =
    ["DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController"];

/// The longest rule name Kubernetes accepts; generated names are cut to it.
const MAX_RULE_NAME: usize = 63;

/// Returns the autogen rules for a ClusterPolicy/Policy document (empty when autogen does not
/// apply). The policy itself is not changed.
pub fn autogen_rules(policy: &Value) -> Vec<Value> {
    let Some(spec) = policy.get("spec") else { return Vec::new() };
    let Some(rules) = spec.get("rules").and_then(Value::as_array) else { return Vec::new() };
    let Some(controllers) = controllers(policy, rules) else { return Vec::new() };
    let template: Vec<&str> = TEMPLATE_CONTROLLERS.iter().copied().filter(|c| controllers.contains(&c.to_string())).collect();
    let cronjob = controllers.iter().any(|c| c == "CronJob");
    let mut out = Vec::new();
    for rule in rules {
        if !matches_pod(rule) {
            continue;
        }
        if !template.is_empty() && let Some(r) = generate(rule, "autogen-", &template, Target::Template) {
            out.push(r);
        }
        if cronjob && let Some(r) = generate(rule, "autogen-cronjob-", &["CronJob"], Target::CronJob) {
            out.push(r);
        }
    }
    out
}

/// The controllers to generate for, or `None` when autogen does not apply to this policy.
fn controllers(policy: &Value, rules: &[Value]) -> Option<Vec<String>> {
    let annotation = policy.pointer("/metadata/annotations").and_then(|a| a.get(ANNOTATION)).and_then(Value::as_str);
    let requested: Vec<String> = match annotation.map(str::trim) {
        None | Some("all") | Some("") => {
            TEMPLATE_CONTROLLERS.iter().map(|s| s.to_string()).chain(["CronJob".to_string()]).collect()
        }
        Some("none") => return None,
        Some(list) => list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
    };
    let mut needed = false;
    for rule in rules {
        if rule.get("generate").is_some() {
            return None;
        }
        if rule.pointer("/mutate/patchesJson6902").is_some_and(|p| !p.is_null() && p != "") {
            return None;
        }
        for filter in filters(rule) {
            if filter.get("name").is_some_and(|n| n != "")
                || filter.get("names").and_then(Value::as_array).is_some_and(|n| !n.is_empty())
                || filter.get("selector").is_some_and(|s| !s.is_null())
                || filter.get("annotations").is_some_and(|s| !s.is_null())
            {
                return None;
            }
            let kinds = kinds(filter);
            if kinds.iter().any(|k| !is_pod(k)) {
                return None;
            }
            needed |= kinds.iter().any(|k| is_pod(k));
        }
    }
    needed.then_some(requested)
}

fn is_pod(kind: &str) -> bool {
    kind == "Pod" || kind == "v1/Pod"
}

fn kinds(filter: &Value) -> Vec<&str> {
    filter.get("kinds").and_then(Value::as_array).map(|k| k.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// Every resource description of a rule's match and exclude, in any of the three forms.
fn filters(rule: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for block in ["match", "exclude"] {
        let Some(m) = rule.get(block) else { continue };
        if let Some(r) = m.get("resources") {
            out.push(r);
        }
        for group in ["any", "all"] {
            for f in m.get(group).and_then(Value::as_array).into_iter().flatten() {
                if let Some(r) = f.get("resources") {
                    out.push(r);
                }
            }
        }
    }
    out
}

fn matches_pod(rule: &Value) -> bool {
    let Some(m) = rule.get("match") else { return false };
    let mut descs: Vec<&Value> = m.get("resources").into_iter().collect();
    for group in ["any", "all"] {
        descs.extend(m.get(group).and_then(Value::as_array).into_iter().flatten().filter_map(|f| f.get("resources")));
    }
    descs.iter().any(|d| kinds(d).iter().any(|k| is_pod(k)))
}

#[derive(Clone, Copy)]
enum Target {
    Template,
    CronJob,
}

impl Target {
    fn wrap(self, pattern: Value) -> Value {
        match self {
            Target::Template => json!({"spec": {"template": pattern}}),
            Target::CronJob => json!({"spec": {"jobTemplate": {"spec": {"template": pattern}}}}),
        }
    }

    fn rewrite(self, text: &str) -> String {
        let (spec, meta) = match self {
            Target::Template => ("spec.template.spec", "spec.template.metadata"),
            Target::CronJob => ("spec.jobTemplate.spec.template.spec", "spec.jobTemplate.spec.template.metadata"),
        };
        let mut t = text.to_owned();
        for obj in ["request.object", "request.oldObject"] {
            t = t.replace(&format!("{obj}.spec"), &format!("{obj}.{spec}"));
            t = t.replace(&format!("{obj}.metadata"), &format!("{obj}.{meta}"));
        }
        t
    }
}

fn generate(rule: &Value, prefix: &str, kinds: &[&str], target: Target) -> Option<Value> {
    let Value::Object(original) = rule else { return None };
    let name = original.get("name").and_then(Value::as_str).unwrap_or_default();
    let mut full = format!("{prefix}{name}");
    if full.len() > MAX_RULE_NAME {
        let mut cut = MAX_RULE_NAME;
        while !full.is_char_boundary(cut) {
            cut -= 1;
        }
        full.truncate(cut);
    }
    let mut out = Map::new();
    for (key, value) in original {
        let new = match key.as_str() {
            "name" => Value::String(full.clone()),
            "match" | "exclude" => with_kinds(value, kinds),
            "validate" => rewrite_validate(value, target),
            "mutate" => rewrite_mutate(value, target),
            "celPreconditions" => rewrite_cel_value(value, target),
            _ => rewrite_text(value, target),
        };
        out.insert(key.clone(), new);
    }
    Some(Value::Object(out))
}

fn with_kinds(block: &Value, kinds: &[&str]) -> Value {
    let mut block = block.clone();
    let set = |desc: &mut Value| {
        if let Some(r) = desc.get_mut("resources").and_then(Value::as_object_mut)
            && r.get("kinds").and_then(Value::as_array).is_some_and(|k| !k.is_empty())
        {
            r.insert("kinds".into(), json!(kinds));
        }
    };
    set(&mut block);
    for group in ["any", "all"] {
        if let Some(items) = block.get_mut(group).and_then(Value::as_array_mut) {
            items.iter_mut().for_each(set);
        }
    }
    block
}

fn rewrite_validate(validate: &Value, target: Target) -> Value {
    let Value::Object(v) = validate else { return validate.clone() };
    let mut out = Map::new();
    for (key, value) in v {
        let new = match key.as_str() {
            "pattern" => target.wrap(rewrite_text(value, target)),
            "anyPattern" => match value {
                Value::Array(items) => Value::Array(items.iter().map(|p| target.wrap(rewrite_text(p, target))).collect()),
                other => other.clone(),
            },
            "cel" => rewrite_cel_value(value, target),
            _ => rewrite_text(value, target),
        };
        out.insert(key.clone(), new);
    }
    Value::Object(out)
}

fn rewrite_mutate(mutate: &Value, target: Target) -> Value {
    let Value::Object(m) = mutate else { return mutate.clone() };
    let mut out = Map::new();
    for (key, value) in m {
        let new = match key.as_str() {
            "patchStrategicMerge" => target.wrap(rewrite_text(value, target)),
            // Each foreach entry's strategic-merge patch is wrapped like the rule's own.
            "foreach" => match value {
                Value::Array(entries) => Value::Array(entries.iter().map(|e| rewrite_mutate(e, target)).collect()),
                other => rewrite_text(other, target),
            },
            _ => rewrite_text(value, target),
        };
        out.insert(key.clone(), new);
    }
    Value::Object(out)
}

/// Kyverno rewrites references in the rule's serialized text; rewriting every string (keys and
/// values) of the JSON tree has the same effect.
/// Rewrites the CEL text of a Pod rule for a controller: `object.spec` becomes
/// `object.spec.template.spec` (or the CronJob path), and the same for `metadata` and
/// `oldObject`. Only whole identifiers are rewritten, so `myobject.spec` stays as it is.
pub fn rewrite_cel(text: &str, cronjob: bool) -> String {
    let (spec, meta) = if cronjob {
        ("spec.jobTemplate.spec.template.spec", "spec.jobTemplate.spec.template.metadata")
    } else {
        ("spec.template.spec", "spec.template.metadata")
    };
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while !rest.is_empty() {
        let boundary = out.chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        let mut matched = false;
        if boundary {
            for obj in ["object", "oldObject"] {
                for (field, replacement) in [("spec", spec), ("metadata", meta)] {
                    let from = format!("{obj}.{field}");
                    let ends = rest.get(from.len()..).and_then(|r| r.chars().next()).is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                    if rest.starts_with(&from) && ends {
                        out.push_str(obj);
                        out.push('.');
                        out.push_str(replacement);
                        rest = rest.get(from.len()..).unwrap_or_default();
                        matched = true;
                        break;
                    }
                }
                if matched {
                    break;
                }
            }
        }
        if !matched {
            let Some(c) = rest.chars().next() else { break };
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
    }
    out
}

fn rewrite_cel_value(value: &Value, target: Target) -> Value {
    match value {
        Value::String(s) => Value::String(rewrite_cel(s, matches!(target, Target::CronJob))),
        Value::Array(items) => Value::Array(items.iter().map(|v| rewrite_cel_value(v, target)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), rewrite_cel_value(v, target))).collect()),
        other => other.clone(),
    }
}

fn rewrite_text(value: &Value, target: Target) -> Value {
    match value {
        Value::String(s) => Value::String(target.rewrite(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| rewrite_text(v, target)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (target.rewrite(k), rewrite_text(v, target))).collect()),
        other => other.clone(),
    }
}
