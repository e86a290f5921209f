//! Rule evaluation: selection (match/exclude), preconditions and validate checks for one
//! resource, producing Kyverno's rule results and messages.

use serde_json::{Map, Value, json};

use palisade_compiler::ir::pattern::Pattern;
use palisade_compiler::ir::policy::{Check, Filter, Foreach, LabelSelector, Match, PatternItem, PolicyIr, RuleBody, RuleIr, Validate};
use palisade_stdlib::jmespath::{self, EvalConfig};
use palisade_stdlib::functions::images::ImageRef;
use palisade_stdlib::template;

use crate::conditions;
use crate::interp::pattern::{Mismatch, match_tree};

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
    /// Variables a values file sets per rule of this policy, applied when the rule loads its
    /// context.
    pub rule_variables: Option<&'a RuleVariables>,
}

/// Values-file variables by rule name.
pub type RuleVariables = std::collections::HashMap<String, Vec<(String, Value)>>;

/// Evaluates every rule of `policy` that applies to the request.
pub fn evaluate(policy: &PolicyIr, req: &Request) -> Vec<RuleResult> {
    Evaluation::new(req).policy(policy)
}

/// One request evaluated against any number of policies.
///
/// The JSON context JMESPath expressions see holds a copy of the request's objects; building it
/// is the largest fixed cost of evaluating a rule that is not a plain pattern. An `Evaluation`
/// builds it once, on the first rule that needs it, and every policy evaluated through it shares
/// it (rules read it; a rule with its own context entries works on a copy). Policies that see
/// different values-file variables need their own `Evaluation`.
pub struct Evaluation<'r, 'a> {
    req: &'r Request<'a>,
    resource: &'a Value,
    ctx: std::cell::OnceCell<Context>,
}

impl<'r, 'a> Evaluation<'r, 'a> {
    pub fn new(req: &'r Request<'a>) -> Evaluation<'r, 'a> {
        let resource = if req.operation == "DELETE" { req.old_object.unwrap_or(req.object) } else { req.object };
        Evaluation { req, resource, ctx: std::cell::OnceCell::new() }
    }

    pub fn request(&self) -> &Request<'a> {
        self.req
    }

    /// Evaluates every validate rule of `policy` that applies to the request.
    pub fn policy(&mut self, policy: &PolicyIr) -> Vec<RuleResult> {
        let (req, resource) = (self.req, self.resource);
        if let Some(ns) = &policy.namespace && namespace_of(resource) != Some(ns.as_str()) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for rule in &policy.rules {
            if matches!(rule.body, RuleBody::Mutate(_) | RuleBody::Generate(_)) || !selected(rule, resource, req) {
                continue;
            }
            let rule_vars = req.rule_variables.and_then(|r| r.get(&rule.name)).map(Vec::as_slice).unwrap_or_default();
            let (status, message) = run_rule(rule, self, rule_vars, resource);
            let enforce = rule.enforce.unwrap_or(policy.enforce);
            out.push(RuleResult { policy: policy.name.clone(), rule: rule.name.clone(), status, message, enforce });
            if policy.apply_one && status != Status::Skip {
                break;
            }
        }
        out
    }

    /// The shared context, built on first use: most rules of most policies select nothing for
    /// a given resource, and plain pattern rules never read it.
    fn context(&self) -> &Context {
        self.ctx.get_or_init(|| Context::new(self.req, self.resource))
    }

    /// The shared context, for a rule that adds to it and undoes what it added before it
    /// returns (`foreach` elements).
    fn context_mut(&mut self) -> Option<&mut Context> {
        self.context();
        self.ctx.get_mut()
    }
}

fn run_rule(rule: &RuleIr, eval: &mut Evaluation, rule_vars: &[(String, Value)], resource: &Value) -> (Status, String) {
    match &rule.body {
        RuleBody::Unsupported(what) => (Status::Error, format!("{what} rules are not evaluated by Palisade yet")),
        // Mutate and generate rules run in `crate::mutate` before validation; `evaluate` skips them.
        RuleBody::Mutate(_) | RuleBody::Generate(_) => (Status::Skip, String::new()),
        // Image verification needs registry access; `crate::images::Verifier` evaluates it.
        RuleBody::VerifyImages(_) => (Status::Error, "verifyImages rules need registry access and are evaluated by the image verifier".to_owned()),
        RuleBody::Validate(v) => {
            // Each rule sees the request's context plus its own entries; the common case (no
            // entries, no values) borrows the shared context instead of copying it, and a rule
            // without preconditions asks for it only when its check reads it: a static pattern
            // or anyPattern that passes, or a podSecurity rule, never does.
            let delete = eval.req.operation == "DELETE";
            let plain = rule.preconditions.is_none() && rule.cel_preconditions.is_empty() && rule.context.is_empty() && rule_vars.is_empty();
            if plain && !matches!(v.check, Check::Foreach(_)) {
                let eval: &Evaluation = eval;
                return validate(rule, v, &|| eval.context(), resource, delete);
            }
            let Some(base) = eval.context_mut() else {
                return (Status::Error, "internal error: the request context could not be built".to_owned());
            };
            let mut owned;
            let ctx = if rule.context.is_empty() && rule_vars.is_empty() {
                base
            } else {
                owned = base.clone();
                for (path, value) in rule_vars {
                    set_dotted(&mut owned.doc, path, value.clone());
                }
                if let Err(e) = owned.load(&rule.context) {
                    return (Status::Error, format!("failed to load context: {e}"));
                }
                &mut owned
            };
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
            if let Check::Foreach(entries) = &v.check {
                // The elements go into this context and are taken out again, so a `foreach`
                // rule copies nothing of the request.
                let scope = Scope { rule, message: v.message.as_deref(), resource, element: None, nesting: 0, delete };
                return foreach_result(&scope, entries, ctx).unwrap_or_else(|| (Status::Skip, "rule skipped".to_owned()));
            }
            let ctx: &Context = ctx;
            validate(rule, v, &|| ctx, resource, delete)
        }
    }
}

/// A rule's check. `ctx` gives the rule's context; it is asked for only when needed.
fn validate<'c>(rule: &RuleIr, v: &Validate, ctx: &dyn Fn() -> &'c Context, resource: &Value, delete: bool) -> (Status, String) {
    let scope = Scope { rule, message: v.message.as_deref(), resource, element: None, nesting: 0, delete };
    run_check(&scope, &v.check, ctx).unwrap_or_else(|| (Status::Skip, "rule skipped".to_owned()))
}

/// What a check runs against: the rule (for its name and message), the resource, and inside
/// `foreach` the current element when the element is the pattern's root.
#[derive(Clone, Copy)]
struct Scope<'a> {
    rule: &'a RuleIr,
    /// The rule's `validate.message`; `foreach` checks use it too, substituted per element.
    message: Option<&'a str>,
    resource: &'a Value,
    element: Option<&'a Value>,
    /// The depth of the next `foreach`, for `element<N>` and `elementIndex<N>`.
    nesting: usize,
    /// Whether the request is a DELETE.
    delete: bool,
}

/// Runs one check. `None` is Kyverno's empty response (a pattern on a DELETE request inside
/// `foreach`), which callers treat as a skip.
fn run_check<'c>(scope: &Scope, check: &Check, ctx: &dyn Fn() -> &'c Context) -> Option<(Status, String)> {
    let name = &scope.rule.name;
    let target = scope.element.unwrap_or(scope.resource);
    Some(match check {
        Check::Pattern(p) => pattern_result(scope, ctx, target, p),
        Check::DynamicPattern(raw) => match ctx().substitute(raw).and_then(|p| Pattern::lower(&p).map_err(|e| e.0)) {
            Ok(p) => pattern_result(scope, ctx, target, &p),
            Err(e) => (Status::Error, format!("variable substitution failed: {e}")),
        },
        Check::AnyPattern(patterns) => {
            let items = patterns.iter().map(|item| match item {
                PatternItem::Static(p) => Ok(match_tree(target, p)),
                PatternItem::Dynamic(raw) => match ctx().substitute(raw).and_then(|p| Pattern::lower(&p).map_err(|e| e.0)) {
                    Ok(p) => Ok(match_tree(target, &p)),
                    Err(e) => Err((Status::Error, format!("variable substitution failed: {e}"))),
                },
            });
            any_pattern_outcome(name, items, || rule_message(ctx, scope.message))
        }
        Check::Deny(conds) => match conditions::evaluate(conds, &|expr| ctx().query(expr)) {
            Err(e) => (Status::Error, format!("failed to check deny conditions: {e}")),
            Ok((false, _)) => (Status::Pass, format!("validation rule '{name}' passed.")),
            Ok((true, msg)) => {
                let parts: Vec<String> = rule_message(ctx, scope.message).into_iter().chain((!msg.is_empty()).then_some(msg)).collect();
                if parts.is_empty() {
                    (Status::Fail, format!("validation error: rule {name} failed"))
                } else {
                    (Status::Fail, parts.join("; "))
                }
            }
        },
        Check::Cel(rules) => {
            let ns = namespace_of(scope.resource).unwrap_or_default();
            crate::cel::validate_rule(name, rules, ctx().cel_bindings(), ns)
        }
        // The elements are added to a working copy of the context, made once per rule.
        Check::Foreach(entries) => return foreach_result(scope, entries, &mut ctx().clone()),
        // Kyverno skips Pod Security checks on DELETE requests (an empty response).
        Check::PodSecurity(_) if scope.delete => return None,
        Check::PodSecurity(ps) => crate::podsecurity::validate_rule(name, ps, scope.resource),
        Check::Unsupported(what) => (Status::Error, format!("{what} is not evaluated by Palisade yet")),
    })
}

/// `foreach`: every entry's list, element by element. The first element that fails (or errors,
/// when it is the last one) decides the rule; an entry whose list cannot be evaluated is
/// skipped; a rule where no element applied is skipped.
fn foreach_result(scope: &Scope, entries: &[Foreach], ctx: &mut Context) -> Option<(Status, String)> {
    let mut applied = 0usize;
    for entry in entries {
        let elements = match ctx.query(&entry.list) {
            Ok(Value::Array(items)) => items,
            Ok(other) => vec![other],
            Err(_) => continue,
        };
        match foreach_elements(scope, entry, &elements, ctx) {
            Ok(count) => applied += count,
            Err(outcome) => return Some(outcome),
        }
    }
    if applied == 0 {
        // A nested `foreach` with nothing to apply is an empty response for its parent element.
        return (scope.nesting == 0).then(|| (Status::Skip, "rule skipped".to_owned()));
    }
    Some((Status::Pass, "rule passed".to_owned()))
}

/// Runs one `foreach` entry over its elements; `Ok` is the number of elements the check applied
/// to (passed), `Err` the rule's outcome when an element did not pass.
fn foreach_elements(scope: &Scope, entry: &Foreach, elements: &[Value], ctx: &mut Context) -> Result<usize, (Status, String)> {
    let mut applied = 0;
    for (index, element) in elements.iter().enumerate() {
        if element.is_null() {
            continue;
        }
        // Each element starts from the context as it was before the loop: what the element
        // sets is undone before the next one.
        let saved = ctx.enter_element(element, index, scope.nesting, &entry.context);
        let outcome = element_outcome(scope, entry, element, ctx);
        ctx.leave_element(saved);
        let outcome = match outcome {
            Err(decided) => return Err(decided),
            Ok(None) => continue,
            Ok(Some(o)) => o,
        };
        match outcome.0 {
            Status::Skip => continue,
            Status::Pass => applied += 1,
            Status::Error if index + 1 < elements.len() => continue,
            status => return Err((status, format!("validation failure: {}", outcome.1))),
        }
    }
    Ok(applied)
}

/// One element's outcome with the element in the context: `Err` when the element decides the
/// rule before its check runs (an `elementScope` it cannot have), `Ok(None)` for an empty
/// response.
#[allow(clippy::type_complexity)]
fn element_outcome(scope: &Scope, entry: &Foreach, element: &Value, ctx: &mut Context) -> Result<Option<(Status, String)>, (Status, String)> {
    let scoped = match entry.element_scope {
        Some(true) if !element.is_object() => {
            let msg = format!(
                "failed to process foreach: cannot use elementScope=true foreach rules for elements that are not maps, expected type=map got type={}",
                go_type_name(element)
            );
            return Err((Status::Error, msg));
        }
        Some(explicit) => explicit,
        None => element.is_object(),
    };
    let inner = Scope { element: if scoped { Some(element) } else { scope.element }, nesting: scope.nesting + 1, ..*scope };
    Ok(run_entry(&inner, entry, ctx))
}

/// One element of a `foreach` entry: its context, its preconditions, then its check.
fn run_entry(scope: &Scope, entry: &Foreach, ctx: &mut Context) -> Option<(Status, String)> {
    if let Err(e) = ctx.load(&entry.context) {
        return Some((Status::Error, format!("failed to load context: {e}")));
    }
    if let Some(pre) = &entry.preconditions {
        match conditions::evaluate(pre, &|expr| ctx.query(expr)) {
            Err(e) => return Some((Status::Error, format!("failed to evaluate preconditions: {e}"))),
            Ok((false, _)) => return Some((Status::Skip, "preconditions not met".to_owned())),
            Ok((true, _)) => {}
        }
    }
    let is_pattern = matches!(entry.check, Check::Pattern(_) | Check::DynamicPattern(_) | Check::AnyPattern(_));
    if is_pattern && scope.element.is_none() && ctx.is_delete() {
        return None;
    }
    match &entry.check {
        // A nested `foreach` adds its elements to the same working context.
        Check::Foreach(inner) => foreach_result(scope, inner, ctx),
        check => {
            let ctx: &Context = ctx;
            run_check(scope, check, &|| ctx)
        }
    }
}

/// Go's `%T` for a decoded JSON value, for messages that quote it.
fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A pattern's result. The context is only needed to render the message of a failure, so it
/// is asked for then (a plain pattern rule that passes never builds it).
fn pattern_result<'c>(scope: &Scope, ctx: &dyn Fn() -> &'c Context, target: &Value, p: &Pattern) -> (Status, String) {
    pattern_outcome(&scope.rule.name, match_tree(target, p), || rule_message(ctx, scope.message))
}

/// A pattern check's status and message from its match, in Kyverno's words. `message` gives
/// the rule's message (substituted); it is asked for only when the pattern does not match.
pub(crate) fn pattern_outcome(name: &str, matched: Result<(), Mismatch>, message: impl FnOnce() -> Option<String>) -> (Status, String) {
    match matched {
        Ok(()) => (Status::Pass, format!("validation rule '{name}' passed.")),
        Err(Mismatch::Skip { message }) => (Status::Skip, message),
        Err(Mismatch::Fail { path, .. }) => (Status::Fail, rule_failure(message(), &[name, " failed at path ", &path])),
        Err(Mismatch::Error { message: error }) => (Status::Error, rule_failure(message(), &[name, " execution error: ", &error])),
    }
}

/// `validation error: [M.] rule {parts}`, the rule's message `M` given a closing period.
fn rule_failure(message: Option<String>, parts: &[&str]) -> String {
    let m = message.as_deref().unwrap_or_default();
    let mut out = String::with_capacity(24 + m.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    out.push_str("validation error: ");
    if message.is_some() {
        out.push_str(m);
        if !m.ends_with('.') {
            out.push('.');
        }
        out.push(' ');
    }
    out.push_str("rule ");
    for part in parts {
        out.push_str(part);
    }
    out
}

/// An anyPattern check's status and message. `items` gives each item's match in order (or the
/// rule's outcome when an item cannot be built); the first item that matches decides, and
/// later items are not asked for.
pub(crate) fn any_pattern_outcome(
    name: &str,
    items: impl Iterator<Item = Result<Result<(), Mismatch>, (Status, String)>>,
    message: impl FnOnce() -> Option<String>,
) -> (Status, String) {
    use std::fmt::Write as _;
    // Each item's words are written straight into the list they join, one space apart; none
    // is empty, so an empty list means no item of its kind.
    let mut failed = String::new();
    let mut skipped = String::new();
    let start = |list: &mut String| {
        if !list.is_empty() {
            list.push(' ');
        }
    };
    for (i, item) in items.enumerate() {
        match item {
            Err(decided) => return decided,
            Ok(Ok(())) => return (Status::Pass, format!("validation rule '{name}' anyPattern[{i}] passed.")),
            Ok(Err(Mismatch::Skip { message })) => {
                start(&mut skipped);
                let _ = write!(skipped, "rule {name}[{i}] skipped: {message}");
            }
            Ok(Err(Mismatch::Error { message })) => {
                start(&mut failed);
                let _ = write!(failed, "rule {name}[{i}] failed: {message}");
            }
            Ok(Err(Mismatch::Fail { path, .. })) => {
                start(&mut failed);
                let _ = write!(failed, "rule {name}[{i}] failed at path {path}");
            }
        }
    }
    if failed.is_empty() && !skipped.is_empty() {
        return (Status::Skip, skipped);
    }
    let m = message();
    let m = m.as_deref();
    let mut msg = String::with_capacity(20 + m.map_or(0, str::len) + failed.len());
    msg.push_str("validation error: ");
    if let Some(m) = m {
        msg.push_str(m);
        msg.push_str(if m.ends_with('.') { " " } else { ". " });
    }
    msg.push_str(&failed);
    (Status::Fail, msg)
}

/// The rule message with its variables substituted. A message without `{{` is taken as it is,
/// so a failing static pattern does not build the request context just to print it.
fn rule_message<'c>(ctx: &dyn Fn() -> &'c Context, m: Option<&str>) -> Option<String> {
    match m {
        Some(text) if !text.is_empty() && !text.contains("{{") => Some(text.to_owned()),
        _ => ctx().message(m),
    }
}

/// The JSON context JMESPath expressions see: `request`, context entries, values overrides.
pub struct Context {
    doc: Value,
    cfg: EvalConfig,
    /// The request as CEL values, built on first use by a CEL rule and shared by the others.
    cel: std::cell::OnceCell<palisade_stdlib::cel::Bindings>,
    namespace_object: Option<Value>,
}

/// Top-level context keys and their values before a `foreach` element changed them.
struct Saved(Vec<(String, Option<Value>)>);

/// A copy for per-element evaluation (`foreach`); the CEL bindings are rebuilt on demand,
/// because the copy's variables may change.
impl Clone for Context {
    fn clone(&self) -> Context {
        Context { doc: self.doc.clone(), cfg: self.cfg.clone(), cel: std::cell::OnceCell::new(), namespace_object: self.namespace_object.clone() }
    }
}

impl Context {
    pub(crate) fn new(req: &Request, resource: &Value) -> Context {
        // Built by hand: `json!` would pass the object through serde's serializer, a deep
        // rebuild that dominated the cost of scanning large inputs; a clone is far cheaper.
        let mut request = Map::new();
        request.insert("operation".into(), Value::String(req.operation.to_owned()));
        request.insert("object".into(), if req.operation == "DELETE" { Value::Null } else { req.object.clone() });
        request.insert("oldObject".into(), req.old_object.cloned().unwrap_or(Value::Null));
        request.insert("userInfo".into(), user_info(req.user));
        request.insert("roles".into(), json!(req.user.roles));
        request.insert("clusterRoles".into(), json!(req.user.cluster_roles));
        request.insert("namespace".into(), Value::String(namespace_of(resource).unwrap_or_default().to_owned()));
        let mut doc = Map::new();
        doc.insert("request".into(), Value::Object(request));
        if let Some(images) = image_infos(resource) {
            doc.insert("images".into(), images);
        }
        let sa = req.user.username.strip_prefix("system:serviceaccount:").and_then(|s| s.split_once(':'));
        if let Some((ns, name)) = sa {
            doc.insert("serviceAccountNamespace".into(), json!(ns));
            doc.insert("serviceAccountName".into(), json!(name));
        }
        let mut doc = Value::Object(doc);
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

    /// The context a rule starts from: the request's, plus the variables the values file sets
    /// for this rule (Kyverno's offline context loader adds them when the rule loads its
    /// context).
    pub(crate) fn for_rule(req: &Request, resource: &Value, rule: &str) -> Context {
        let mut ctx = Context::new(req, resource);
        for (path, value) in req.rule_variables.and_then(|r| r.get(rule)).into_iter().flatten() {
            set_dotted(&mut ctx.doc, path, value.clone());
        }
        ctx
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
                rule_variables: None,
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

    /// Adds a `foreach` element (`element`, `elementIndex` and their `<N>` forms for the depth)
    /// and returns what [`Context::leave_element`] needs to put the context back as it was: the
    /// element's keys and the top-level keys its entry's context entries may write, with their
    /// values before. Copying only those, instead of the whole context per element, keeps a
    /// `foreach` over many elements from copying the request each time.
    fn enter_element(&mut self, element: &Value, index: usize, nesting: usize, entry_context: &[Value]) -> Saved {
        let mut saved = Saved(Vec::new());
        let Value::Object(doc) = &mut self.doc else { return saved };
        for key in ["element".to_owned(), "elementIndex".to_owned(), format!("element{nesting}"), format!("elementIndex{nesting}")] {
            let before = doc.remove(&key);
            saved.0.push((key, before));
        }
        for entry in entry_context {
            let Some(name) = entry.get("name").and_then(Value::as_str) else { continue };
            let top = name.split('.').next().unwrap_or(name);
            if !saved.0.iter().any(|(k, _)| k == top) {
                saved.0.push((top.to_owned(), doc.get(top).cloned()));
            }
        }
        doc.insert("element".to_owned(), element.clone());
        doc.insert("elementIndex".to_owned(), json!(index));
        doc.insert(format!("element{nesting}"), element.clone());
        doc.insert(format!("elementIndex{nesting}"), json!(index));
        self.cel = std::cell::OnceCell::new();
        saved
    }

    /// Undoes [`Context::enter_element`].
    fn leave_element(&mut self, saved: Saved) {
        if let Value::Object(doc) = &mut self.doc {
            for (key, before) in saved.0.into_iter().rev() {
                match before {
                    Some(v) => doc.insert(key, v),
                    None => doc.remove(&key),
                };
            }
        }
        self.cel = std::cell::OnceCell::new();
    }

    fn is_delete(&self) -> bool {
        self.doc.pointer("/request/operation").and_then(Value::as_str) == Some("DELETE")
    }

    /// A copy of this context with an object's top-level fields added, the way Kyverno adds an
    /// attestation's predicate before evaluating its conditions.
    pub(crate) fn with_fields(&self, obj: &Value) -> Context {
        let mut copy = self.clone();
        if let (Value::Object(target), Value::Object(fields)) = (&mut copy.doc, obj) {
            for (k, v) in fields {
                target.insert(k.clone(), v.clone());
            }
        }
        copy
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

/// Kyverno's `images` variable: `images.<containers|initContainers|ephemeralContainers>.<name>`
/// with each container's parsed image reference, from a Pod or a pod controller's template.
/// References that do not parse are left out.
fn image_infos(resource: &Value) -> Option<Value> {
    let pointer = match resource.get("kind").and_then(Value::as_str) {
        Some("Pod") => "/spec",
        Some("CronJob") => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    };
    let spec = resource.pointer(pointer)?;
    let mut images = Map::new();
    for kind in ["containers", "initContainers", "ephemeralContainers"] {
        let mut by_name = Map::new();
        for container in spec.get(kind).and_then(Value::as_array).into_iter().flatten() {
            let name = container.get("name").and_then(Value::as_str).unwrap_or_default();
            let image = container.get("image").and_then(Value::as_str).unwrap_or_default();
            if let Ok(r) = ImageRef::parse(image) {
                by_name.insert(name.to_owned(), r.to_json());
            }
        }
        if !by_name.is_empty() {
            images.insert(kind.to_owned(), Value::Object(by_name));
        }
    }
    (!images.is_empty()).then_some(Value::Object(images))
}

/// `request.userInfo` as Kubernetes serialises it: empty fields are left out, so a request
/// without a user has `{}` and `request.userInfo.groups` is an unknown key, not `[]`.
fn user_info(user: &UserInfo) -> Value {
    let mut info = Map::new();
    if !user.username.is_empty() {
        info.insert("username".to_owned(), json!(user.username));
    }
    if !user.groups.is_empty() {
        info.insert("groups".to_owned(), json!(user.groups));
    }
    Value::Object(info)
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
    if let Some(sel) = &f.namespace_selector && (kind == "Namespace" || !selector_matches(sel, req.namespace_labels)) {
        return false;
    }
    user_matches(f, req.user)
}

/// The user-facing part of a filter: `subjects`, `roles` and `clusterRoles`. Shared by the
/// interpreter and the compiled set engine.
pub(crate) fn user_matches(f: &Filter, user: &UserInfo) -> bool {
    if !f.subjects.is_empty() {
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
    if !f.roles.is_empty() && !f.roles.iter().any(|r| user.roles.contains(r)) {
        return false;
    }
    if !f.cluster_roles.is_empty() && !f.cluster_roles.iter().any(|r| user.cluster_roles.contains(r)) {
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
