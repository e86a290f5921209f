//! Rule evaluation: selection (match/exclude), preconditions and validate checks for one
//! resource, producing Kyverno's rule results and messages.

use serde_json::{Map, Value, json};

use palisade_compiler::ir::pattern::Pattern;
use palisade_compiler::ir::policy::{Check, Filter, LabelSelector, Match, PolicyIr, RuleBody, RuleIr, Validate};
use palisade_stdlib::jmespath::{self, EvalConfig};
use palisade_stdlib::template;

use crate::conditions;
use crate::interp::pattern::{Mismatch, match_pattern};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Error,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::Error => "error",
            Status::Skip => "skip",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleResult {
    pub policy: String,
    pub rule: String,
    pub status: Status,
    pub message: String,
    /// Whether a failure of this rule blocks admission (its failure action is Enforce).
    pub enforce: bool,
}

/// Who sends the request, for `subjects`, `roles` and `clusterRoles` and `request.userInfo`.
#[derive(Clone, Debug, Default)]
pub struct UserInfo {
    pub username: String,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub cluster_roles: Vec<String>,
}

/// One admission request (or its offline stand-in).
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub operation: &'a str,
    pub object: &'a Value,
    pub old_object: Option<&'a Value>,
    pub user: &'a UserInfo,
    /// The labels of the resource's namespace, when known (for `namespaceSelector`).
    pub namespace_labels: Option<&'a Map<String, Value>>,
    /// Variables a values file sets for this policy and resource (`request.operation: UPDATE`).
    pub variables: &'a [(String, Value)],
}

/// Evaluates every rule of `policy` that applies to the request.
pub fn evaluate(policy: &PolicyIr, req: &Request) -> Vec<RuleResult> {
    let resource = if req.operation == "DELETE" { req.old_object.unwrap_or(req.object) } else { req.object };
    if let Some(ns) = &policy.namespace {
        if namespace_of(resource) != Some(ns.as_str()) {
            return Vec::new();
        }
    }
    let mut ctx = Context::new(req, resource);
    let mut out = Vec::new();
    for rule in &policy.rules {
        if matches!(rule.body, RuleBody::Mutate(_) | RuleBody::Generate(_)) || !selected(rule, resource, req) {
            continue;
        }
        let (status, message) = run_rule(rule, &mut ctx, resource);
        let enforce = rule.enforce.unwrap_or(policy.enforce);
        out.push(RuleResult { policy: policy.name.clone(), rule: rule.name.clone(), status, message, enforce });
        if policy.apply_one && status != Status::Skip {
            break;
        }
    }
    out
}

fn run_rule(rule: &RuleIr, ctx: &mut Context, resource: &Value) -> (Status, String) {
    match &rule.body {
        RuleBody::Unsupported(what) => (Status::Error, format!("{what} rules are not evaluated by Palisade yet")),
        // Mutate and generate rules run in `crate::mutate` before validation; `evaluate` skips them.
        RuleBody::Mutate(_) | RuleBody::Generate(_) => (Status::Skip, String::new()),
        RuleBody::Validate(v) => {
            if let Err(e) = ctx.load(&rule.context) {
                return (Status::Error, format!("failed to load context: {e}"));
            }
            if let Some(pre) = &rule.preconditions {
                match conditions::evaluate(pre, &|expr| ctx.query(expr)) {
                    Err(e) => return (Status::Error, format!("failed to evaluate preconditions: {e}")),
                    Ok((false, msg)) => {
                        let m = if msg.is_empty() { "preconditions not met".to_string() } else { format!("preconditions not met; {msg}") };
                        return (Status::Skip, m);
                    }
                    Ok((true, _)) => {}
                }
            }
            if !rule.cel_preconditions.is_empty() {
                match crate::cel::preconditions_hold(&rule.cel_preconditions, ctx.cel_bindings()) {
                    Err(e) => return (Status::Error, format!("failed to evaluate celPreconditions: {e}")),
                    Ok(false) => return (Status::Skip, "celPreconditions not met".into()),
                    Ok(true) => {}
                }
            }
            validate(rule, v, ctx, resource)
        }
    }
}

fn validate(rule: &RuleIr, v: &Validate, ctx: &Context, resource: &Value) -> (Status, String) {
    let name = &rule.name;
    match &v.check {
        Check::Pattern(p) => pattern_result(rule, v, ctx, resource, p),
        Check::DynamicPattern(raw) => match ctx.substitute(raw).and_then(|p| Pattern::lower(&p).map_err(|e| e.0)) {
            Ok(p) => pattern_result(rule, v, ctx, resource, &p),
            Err(e) => (Status::Error, format!("variable substitution failed: {e}")),
        },
        Check::AnyPattern(patterns) => {
            let mut failed = Vec::new();
            let mut skipped = Vec::new();
            for (i, raw) in patterns.iter().enumerate() {
                let lowered = ctx.substitute(raw).and_then(|p| Pattern::lower(&p).map_err(|e| e.0));
                let p = match lowered {
                    Ok(p) => p,
                    Err(e) => return (Status::Error, format!("variable substitution failed: {e}")),
                };
                match match_pattern(resource, &p) {
                    Ok(()) => return (Status::Pass, format!("validation rule '{name}' anyPattern[{i}] passed.")),
                    Err(Mismatch::Skip { message }) => skipped.push(format!("rule {name}[{i}] skipped: {message}")),
                    Err(Mismatch::Error { message }) => failed.push(format!("rule {name}[{i}] failed: {message}")),
                    Err(Mismatch::Fail { path, .. }) => failed.push(format!("rule {name}[{i}] failed at path {path}")),
                }
            }
            if failed.is_empty() && !skipped.is_empty() {
                return (Status::Skip, skipped.join(" "));
            }
            let errs = failed.join(" ");
            let msg = match ctx.message(v.message.as_deref()) {
                None => format!("validation error: {errs}"),
                Some(m) if m.ends_with('.') => format!("validation error: {m} {errs}"),
                Some(m) => format!("validation error: {m}. {errs}"),
            };
            (Status::Fail, msg)
        }
        Check::Deny(conds) => match conditions::evaluate(conds, &|expr| ctx.query(expr)) {
            Err(e) => (Status::Error, format!("failed to check deny conditions: {e}")),
            Ok((false, _)) => (Status::Pass, format!("validation rule '{name}' passed.")),
            Ok((true, msg)) => {
                let parts: Vec<String> = ctx.message(v.message.as_deref()).into_iter().chain((!msg.is_empty()).then_some(msg)).collect();
                if parts.is_empty() {
                    (Status::Fail, format!("validation error: rule {name} failed"))
                } else {
                    (Status::Fail, parts.join("; "))
                }
            }
        },
        Check::Cel(rules) => {
            let ns = namespace_of(resource).unwrap_or_default();
            crate::cel::validate_rule(name, rules, ctx.cel_bindings(), ns)
        }
        Check::Unsupported(what) => (Status::Error, format!("{what} is not evaluated by Palisade yet")),
    }
}

fn pattern_result(rule: &RuleIr, v: &Validate, ctx: &Context, resource: &Value, p: &Pattern) -> (Status, String) {
    let name = &rule.name;
    match match_pattern(resource, p) {
        Ok(()) => (Status::Pass, format!("validation rule '{name}' passed.")),
        Err(Mismatch::Skip { message }) => (Status::Skip, message),
        Err(Mismatch::Fail { path, .. }) => (Status::Fail, match ctx.message(v.message.as_deref()) {
            None => format!("validation error: rule {name} failed at path {path}"),
            Some(m) => format!("validation error: {} rule {name} failed at path {path}", with_period(&m)),
        }),
        Err(Mismatch::Error { message }) => (Status::Error, match ctx.message(v.message.as_deref()) {
            None => format!("validation error: rule {name} execution error: {message}"),
            Some(m) => format!("validation error: {} rule {name} execution error: {message}", with_period(&m)),
        }),
    }
}

fn with_period(m: &str) -> String {
    if m.ends_with('.') { m.to_owned() } else { format!("{m}.") }
}

/// The JSON context JMESPath expressions see: `request`, context entries, values overrides.
pub struct Context {
    doc: Value,
    cfg: EvalConfig,
    /// The request as CEL values, built on first use by a CEL rule and shared by the others.
    cel: std::cell::OnceCell<palisade_stdlib::cel::Bindings>,
    namespace_object: Option<Value>,
}

/// A copy for per-element evaluation (`foreach`); the CEL bindings are rebuilt on demand,
/// because the copy's variables may change.
impl Clone for Context {
    fn clone(&self) -> Context {
        Context { doc: self.doc.clone(), cfg: self.cfg.clone(), cel: std::cell::OnceCell::new(), namespace_object: self.namespace_object.clone() }
    }
}

impl Context {
    pub(crate) fn new(req: &Request, resource: &Value) -> Context {
        let mut request = json!({
            "operation": req.operation,
            "object": req.object,
            "oldObject": req.old_object.cloned().unwrap_or(Value::Null),
            "userInfo": {"username": req.user.username, "groups": req.user.groups},
            "roles": req.user.roles,
            "clusterRoles": req.user.cluster_roles,
            "namespace": namespace_of(resource).unwrap_or_default(),
        });
        if req.operation == "DELETE" {
            request["object"] = Value::Null;
        }
        let mut doc = json!({ "request": request, "images": crate::images::of(resource) });
        let sa = req.user.username.strip_prefix("system:serviceaccount:").and_then(|s| s.split_once(':'));
        if let Some((ns, name)) = sa {
            doc["serviceAccountNamespace"] = json!(ns);
            doc["serviceAccountName"] = json!(name);
        }
        for (path, value) in req.variables {
            set_dotted(&mut doc, path, value.clone());
        }
        let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
        // Kyverno's CLI puts namespaced resources that name no namespace in `default`.
        let ns = match namespace_of(resource).unwrap_or_default() {
            "" if !crate::cel::cluster_scoped(kind) => Some("default"),
            "" => None,
            ns => Some(ns),
        };
        let namespace_object = ns.map(|ns| {
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": req.namespace_labels.cloned().unwrap_or_default()}})
        });
        Context { doc, cfg: EvalConfig::kyverno(), cel: std::cell::OnceCell::new(), namespace_object }
    }

    /// The CEL variables of this request (`object`, `oldObject`, `request`, `namespaceObject`).
    fn cel_bindings(&self) -> &palisade_stdlib::cel::Bindings {
        self.cel.get_or_init(|| {
            let request = self.doc.get("request");
            let pick = |k: &str| request.and_then(|r| r.get(k)).cloned().unwrap_or(Value::Null);
            let (object, old) = (pick("object"), pick("oldObject"));
            let user = UserInfo {
                username: request.and_then(|r| r.pointer("/userInfo/username")).and_then(Value::as_str).unwrap_or_default().to_owned(),
                ..UserInfo::default()
            };
            let operation = request.and_then(|r| r.get("operation")).and_then(Value::as_str).unwrap_or("CREATE").to_owned();
            let req = Request {
                operation: &operation,
                object: &object,
                old_object: (!old.is_null()).then_some(&old),
                user: &user,
                namespace_labels: None,
                variables: &[],
            };
            crate::cel::bindings(&req, self.namespace_object.as_ref())
        })
    }

    /// Loads `variable` context entries (others need a cluster and come from values files).
    pub(crate) fn load(&mut self, entries: &[Value]) -> Result<(), String> {
        for entry in entries {
            let Some(name) = entry.get("name").and_then(Value::as_str) else { continue };
            // A value set by the values file wins over the policy's definition.
            if self.doc.get(name).is_some() {
                continue;
            }
            if let Some(var) = entry.get("variable") {
                let mut value = match var.get("value") {
                    Some(v) => self.substitute(v)?,
                    None => Value::Null,
                };
                if let Some(path) = var.get("jmesPath").and_then(Value::as_str) {
                    let path = self.substitute(&json!(path))?;
                    let path = path.as_str().unwrap_or_default().to_owned();
                    let source = if var.get("value").is_some() { value.clone() } else { self.doc.clone() };
                    value = match jmespath::search(&path, &source, &self.cfg) {
                        Ok(v) if !v.is_null() => v,
                        _ => match var.get("default") {
                            Some(d) => self.substitute(d)?,
                            None => Value::Null,
                        },
                    };
                }
                set_dotted(&mut self.doc, name, value);
            }
        }
        Ok(())
    }

    pub(crate) fn query(&self, expr: &str) -> Result<Value, String> {
        jmespath::search(expr.trim(), &self.doc, &self.cfg).map_err(|e| e.to_string())
    }

    pub(crate) fn substitute(&self, v: &Value) -> Result<Value, String> {
        template::substitute_document(v, |_, expr| self.query(expr)).map_err(|e| format!("{e:?}"))
    }

    /// Sets a variable (`element`, `request.object`) at a dotted path.
    pub(crate) fn set(&mut self, path: &str, value: Value) {
        set_dotted(&mut self.doc, path, value);
    }

    /// The rule message with its variables substituted.
    fn message(&self, m: Option<&str>) -> Option<String> {
        let m = m.filter(|m| !m.is_empty())?;
        match template::substitute(m, |expr| self.query(expr)) {
            Ok(Value::String(s)) => Some(s),
            Ok(other) => Some(template::embedded_text(&other)),
            Err(_) => Some(m.to_owned()),
        }
    }
}

fn set_dotted(doc: &mut Value, path: &str, value: Value) {
    let mut cur = doc;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(map) = cur else { return };
        if i + 1 == parts.len() {
            map.insert((*part).to_owned(), value);
            return;
        }
        cur = map.entry((*part).to_owned()).or_insert_with(|| Value::Object(Map::new()));
    }
}

pub fn namespace_of(resource: &Value) -> Option<&str> {
    resource.pointer("/metadata/namespace").and_then(Value::as_str)
}

/// Group, version and kind of a resource from its `apiVersion` and `kind`.
pub fn gvk(resource: &Value) -> (&str, &str, &str) {
    let api = resource.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    let (group, version) = api.rsplit_once('/').unwrap_or(("", api));
    (group, version, resource.get("kind").and_then(Value::as_str).unwrap_or_default())
}

pub(crate) fn selected(rule: &RuleIr, resource: &Value, req: &Request) -> bool {
    if !match_block(&rule.matcher, resource, req) {
        return false;
    }
    match &rule.exclude {
        Some(ex) if !(ex.any.is_empty() && ex.all.is_empty()) => !match_block(ex, resource, req),
        _ => true,
    }
}

fn match_block(m: &Match, resource: &Value, req: &Request) -> bool {
    if !m.any.is_empty() {
        return m.any.iter().any(|f| filter_matches(f, resource, req));
    }
    if !m.all.is_empty() {
        return m.all.iter().all(|f| filter_matches(f, resource, req));
    }
    false
}

fn filter_matches(f: &Filter, resource: &Value, req: &Request) -> bool {
    let (group, version, kind) = gvk(resource);
    if !f.kinds.is_empty() && !f.kinds.iter().any(|k| k.matches(group, version, kind, "")) {
        return false;
    }
    let meta = resource.get("metadata");
    let str_at = |p: &str| meta.and_then(|m| m.get(p)).and_then(Value::as_str).unwrap_or_default();
    if !f.names.is_empty() {
        let name = if str_at("name").is_empty() { str_at("generateName") } else { str_at("name") };
        if !f.names.iter().any(|w| w.matches(name)) {
            return false;
        }
    }
    if !f.namespaces.is_empty() {
        let ns = if kind == "Namespace" { str_at("name") } else { str_at("namespace") };
        if !f.namespaces.iter().any(|w| w.matches(ns)) {
            return false;
        }
    }
    if !f.operations.is_empty() && !f.operations.iter().any(|o| o == req.operation) {
        return false;
    }
    if !f.annotations.is_empty() {
        let annotations = meta.and_then(|m| m.get("annotations")).and_then(Value::as_object);
        let ok = f.annotations.iter().all(|(k, v)| {
            annotations.is_some_and(|a| a.iter().any(|(ak, av)| k.matches(ak) && v.matches(av.as_str().unwrap_or_default())))
        });
        if !ok {
            return false;
        }
    }
    if let Some(sel) = &f.selector {
        let labels = meta.and_then(|m| m.get("labels")).and_then(Value::as_object);
        if !selector_matches(sel, labels) {
            return false;
        }
    }
    if let Some(sel) = &f.namespace_selector {
        if kind == "Namespace" || !selector_matches(sel, req.namespace_labels) {
            return false;
        }
    }
    if !f.subjects.is_empty() {
        let user = &req.user;
        let ok = f.subjects.iter().any(|s| match s.kind.as_str() {
            "ServiceAccount" => {
                let full = format!("system:serviceaccount:{}:", s.namespace.as_deref().unwrap_or_default());
                user.username.strip_prefix(&full).is_some_and(|n| s.name.matches(n))
            }
            "User" => s.name.matches(&user.username),
            "Group" => user.groups.iter().any(|g| s.name.matches(g)),
            _ => false,
        });
        if !ok {
            return false;
        }
    }
    if !f.roles.is_empty() && !f.roles.iter().any(|r| req.user.roles.contains(r)) {
        return false;
    }
    if !f.cluster_roles.is_empty() && !f.cluster_roles.iter().any(|r| req.user.cluster_roles.contains(r)) {
        return false;
    }
    true
}

fn selector_matches(sel: &LabelSelector, labels: Option<&Map<String, Value>>) -> bool {
    let empty = Map::new();
    let labels = labels.unwrap_or(&empty);
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let labels_ok = sel.match_labels.iter().all(|(k, v)| {
        labels.iter().any(|(lk, lv)| k.matches(lk) && v.matches(lv.as_str().unwrap_or_default()))
    });
    labels_ok
        && sel.match_expressions.iter().all(|e| match e.operator.as_str() {
            "In" => label(&e.key).is_some_and(|v| e.values.iter().any(|x| x == v)),
            "NotIn" => label(&e.key).is_none_or(|v| !e.values.iter().any(|x| x == v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        })
}
