//! `generate` rules, as the CLI runs them: the resource a rule would create for a trigger, from
//! `data`, `clone` or `cloneList` (sources are the resources the caller knows: a test's
//! resources and `clusterResources`), or for each element of a `foreach` list.
//!
//! Generated resources carry Kyverno's tracking labels (`generate.kyverno.io/policy-name`,
//! `rule-name`, `trigger-*`, `app.kubernetes.io/managed-by`); cloned ones also carry
//! `generate.kyverno.io/clone-source`.

use serde_json::{Map, Value, json};

use palisade_compiler::ir::policy::{PolicyIr, RuleBody, RuleIr};

use crate::conditions;
use crate::engine::{Context, Request, RuleResult, Status, gvk, namespace_of, selected};

/// What the generate rules of one policy produce for one trigger.
#[derive(Clone, Debug, Default)]
pub struct Generation {
    pub results: Vec<RuleResult>,
    /// `(rule, resource)` for every resource generated.
    pub resources: Vec<(String, Value)>,
}

/// Evaluates the generate rules of `policy` for the trigger `req.object`.
pub fn generate(policy: &PolicyIr, req: &Request, sources: &[Value]) -> Generation {
    let mut out = Generation::default();
    let trigger = req.object;
    if policy.namespace.as_deref().is_some_and(|ns| namespace_of(trigger) != Some(ns)) {
        return out;
    }
    for rule in &policy.rules {
        let RuleBody::Generate(g) = &rule.body else { continue };
        if !selected(rule, trigger, req) {
            continue;
        }
        let ctx = Context::for_rule(req, trigger, &rule.name);
        let (status, message, generated) = match run_rule(policy, rule, &g.raw, ctx, trigger, sources) {
            Ok(Some(resources)) if resources.is_empty() => (Status::Skip, "no resources to generate".to_string(), Vec::new()),
            Ok(Some(resources)) => (Status::Pass, format!("generated {} resource(s)", resources.len()), resources),
            Ok(None) => (Status::Skip, "preconditions not met".to_string(), Vec::new()),
            Err(e) => (Status::Error, e, Vec::new()),
        };
        out.results.push(RuleResult { policy: policy.name.clone(), rule: rule.name.clone(), status, message, enforce: false });
        out.resources.extend(generated.into_iter().map(|r| (rule.name.clone(), r)));
    }
    out
}

/// `Ok(None)` when the preconditions do not hold.
fn run_rule(policy: &PolicyIr, rule: &RuleIr, raw: &Value, mut ctx: Context, trigger: &Value, sources: &[Value]) -> Result<Option<Vec<Value>>, String> {
    ctx.load(&rule.context).map_err(|e| format!("failed to load context: {e}"))?;
    if let Some(pre) = &rule.preconditions {
        match conditions::evaluate(pre, &|expr| ctx.query(expr)) {
            Err(e) => return Err(format!("failed to evaluate preconditions: {e}")),
            Ok((false, _)) => return Ok(None),
            Ok((true, _)) => {}
        }
    }
    let labels = Labels { policy, rule, trigger };
    match raw.get("foreach").and_then(Value::as_array) {
        None => {
            let spec = ctx.substitute(raw).map_err(|e| format!("variable substitution failed: {e}"))?;
            one(&spec, sources, &labels).map(Some)
        }
        Some(entries) => {
            let mut all = Vec::new();
            for fe in entries {
                let expr = fe.get("list").and_then(Value::as_str).unwrap_or_default();
                let items = match ctx.query(expr) {
                    Ok(Value::Array(items)) => items,
                    Ok(Value::Null) => continue,
                    Ok(other) => return Err(format!("foreach list `{expr}` is not a list: {other}")),
                    Err(e) => return Err(format!("failed to evaluate foreach list `{expr}`: {e}")),
                };
                for (i, element) in items.iter().enumerate() {
                    let mut ec = ctx.clone();
                    ec.set("element", element.clone());
                    ec.set("elementIndex", json!(i));
                    let entries = fe.get("context").and_then(Value::as_array).cloned().unwrap_or_default();
                    ec.load(&entries).map_err(|e| format!("failed to load foreach context: {e}"))?;
                    if let Some(pre) = fe.get("preconditions").filter(|p| !p.is_null()) {
                        match conditions::evaluate(pre, &|expr| ec.query(expr)) {
                            Err(e) => return Err(format!("failed to evaluate foreach preconditions: {e}")),
                            Ok((false, _)) => continue,
                            Ok((true, _)) => {}
                        }
                    }
                    let spec = ec.substitute(fe).map_err(|e| format!("variable substitution failed: {e}"))?;
                    all.extend(one(&spec, sources, &labels)?);
                }
            }
            Ok(Some(all))
        }
    }
}

struct Labels<'a> {
    policy: &'a PolicyIr,
    rule: &'a RuleIr,
    trigger: &'a Value,
}

impl Labels<'_> {
    fn apply(&self, resource: &mut Value, clone_source: Option<&Value>) {
        let (group, version, kind) = gvk(self.trigger);
        let meta = |p: &str| self.trigger.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut labels = vec![
            ("app.kubernetes.io/managed-by", "kyverno".to_owned()),
            ("generate.kyverno.io/policy-name", self.policy.name.clone()),
            ("generate.kyverno.io/policy-namespace", self.policy.namespace.clone().unwrap_or_default()),
            ("generate.kyverno.io/rule-name", self.rule.name.clone()),
            ("generate.kyverno.io/trigger-group", group.to_owned()),
            ("generate.kyverno.io/trigger-version", version.to_owned()),
            ("generate.kyverno.io/trigger-kind", kind.to_owned()),
            ("generate.kyverno.io/trigger-namespace", meta("/metadata/namespace")),
            ("generate.kyverno.io/trigger-uid", meta("/metadata/uid")),
        ];
        if let Some(src) = clone_source {
            labels.push(("generate.kyverno.io/clone-source", String::new()));
            let (sg, sv, sk) = gvk(src);
            let s = |p: &str| src.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
            labels.extend([
                ("generate.kyverno.io/source-group", sg.to_owned()),
                ("generate.kyverno.io/source-version", sv.to_owned()),
                ("generate.kyverno.io/source-kind", sk.to_owned()),
                ("generate.kyverno.io/source-namespace", s("/metadata/namespace")),
                ("generate.kyverno.io/source-name", s("/metadata/name")),
                ("generate.kyverno.io/source-uid", s("/metadata/uid")),
            ]);
        }
        let Some(map) = resource.as_object_mut() else { return };
        let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        let Some(meta) = meta.as_object_mut() else { return };
        let l = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
        if let Some(l) = l.as_object_mut() {
            for (k, v) in labels {
                l.insert(k.to_owned(), Value::String(v));
            }
        }
    }
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// The resources of one generate spec (`data`, `clone` or `cloneList`).
fn one(spec: &Value, sources: &[Value], labels: &Labels) -> Result<Vec<Value>, String> {
    let (api, kind, name, namespace) = (field(spec, "apiVersion"), field(spec, "kind"), field(spec, "name"), field(spec, "namespace"));
    if let Some(data) = spec.get("data") {
        let mut r = match data {
            Value::Object(_) => data.clone(),
            Value::Null => json!({}),
            other => return Err(format!("generate.data must be a map, found {other}")),
        };
        set_identity(&mut r, api, kind, name, namespace);
        labels.apply(&mut r, None);
        return Ok(vec![r]);
    }
    if let Some(clone) = spec.get("clone") {
        let (src_ns, src_name) = (field(clone, "namespace"), field(clone, "name"));
        let source = sources
            .iter()
            .find(|s| field(s, "kind") == kind && meta_str(s, "name") == src_name && meta_str(s, "namespace") == src_ns)
            .ok_or_else(|| format!("source resource {kind} {src_ns}/{src_name} to clone not found"))?;
        let mut r = strip(source);
        set_identity(&mut r, api, kind, name, namespace);
        labels.apply(&mut r, Some(source));
        return Ok(vec![r]);
    }
    if let Some(list) = spec.get("cloneList") {
        let src_ns = field(list, "namespace");
        let kinds: Vec<&str> = list.get("kinds").and_then(Value::as_array).map(|k| k.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        let selector = list.pointer("/selector/matchLabels").and_then(Value::as_object);
        let mut out = Vec::new();
        for s in sources {
            let (_, version, k) = gvk(s);
            let api_kind = format!("{}/{k}", field(s, "apiVersion"));
            let kind_ok = kinds.iter().any(|want| *want == k || *want == api_kind || *want == format!("{version}/{k}"));
            let labels_ok = selector.is_none_or(|sel| {
                sel.iter().all(|(lk, lv)| s.pointer("/metadata/labels").and_then(|l| l.get(lk)) == Some(lv))
            });
            if kind_ok && meta_str(s, "namespace") == src_ns && labels_ok {
                let mut r = strip(s);
                let src_name = meta_str(s, "name").to_owned();
                set_identity(&mut r, field(s, "apiVersion"), k, &src_name, namespace);
                labels.apply(&mut r, Some(s));
                out.push(r);
            }
        }
        return Ok(out);
    }
    Err("generate needs one of data, clone, cloneList or foreach".into())
}

fn meta_str<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get("metadata").and_then(|m| m.get(name)).and_then(Value::as_str).unwrap_or_default()
}

/// A copy of a source without the fields the API server owns.
fn strip(source: &Value) -> Value {
    let mut r = source.clone();
    if let Some(meta) = r.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "selfLink", "ownerReferences"] {
            meta.shift_remove(k);
        }
    }
    if let Some(map) = r.as_object_mut() {
        map.shift_remove("status");
    }
    r
}

fn set_identity(r: &mut Value, api: &str, kind: &str, name: &str, namespace: &str) {
    let Some(map) = r.as_object_mut() else { return };
    if !api.is_empty() {
        map.insert("apiVersion".into(), json!(api));
    }
    if !kind.is_empty() {
        map.insert("kind".into(), json!(kind));
    }
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if let Some(meta) = meta.as_object_mut() {
        if !name.is_empty() {
            meta.insert("name".into(), json!(name));
        }
        if !namespace.is_empty() {
            meta.insert("namespace".into(), json!(namespace));
        }
    }
}
