//! Whole-set compilation: a policy set loaded once into an immutable engine that answers
//! admission requests with native matchers.
//!
//! At load, every rule gets a plan: a static `pattern` or `anyPattern` rule without
//! preconditions or context runs natively ([`crate::jit`]); every other rule runs in the
//! interpreter, and [`CompiledSet::explain`] says why. An index from kind to candidate rules
//! means a request only touches rules whose match can select its kind; rules that name no
//! kind, or a wildcard kind, are candidates for every request.
//!
//! Per request the document is parsed once into the matching form ([`crate::doc`]). A policy
//! whose candidate rules all run natively and pass is answered without building a
//! `serde_json::Value` or a message. Any other policy (a rule not compiled, or a native rule
//! that does not pass) goes to the interpreter as a whole policy, through the same
//! [`engine::evaluate`] that `palisade apply` uses, so results, messages and paths are the
//! interpreter's own; the resource `Value` for it is built once per request and shared.

mod conds;
mod load;
mod review;
mod select;
mod tape;

pub use load::{load_policies, padding};
pub use review::{MessageWriter, Review, ReviewError, admit, resource_value, respond, response_json, response_json_with};

use std::cell::{Cell, OnceCell};
use std::collections::HashMap;

use serde_json::Value;

use palisade_compiler::ir::pattern::Pattern;
use palisade_compiler::ir::policy::{Check, Match, PatternItem, PolicyIr, RuleBody, RuleIr};

use crate::doc::{Doc, KeyTable};
use crate::engine::{self, Request, RuleResult, Status, UserInfo};
use crate::interp::pattern::{DocNode, match_tree};
use crate::jit::{CompiledPattern, Jit, Verdict};
use crate::podsecurity::CheckCache;
use crate::podsecurity::checks::Pod;
use crate::podsecurity::node::Node;

/// How one rule is evaluated.
#[derive(Debug)]
enum Plan {
    /// Indexes into `CompiledSet::native`: one pattern, or the items of an `anyPattern`.
    Native(Vec<usize>),
    /// Preconditions, `deny` or `foreach` answered on the tape ([`conds`]).
    Conditions(Box<conds::CondPlan>),
    /// A static pattern the JIT does not compile, walked on the tape by the interpreter's code.
    Walk(String),
    /// `validate.podSecurity`: the Pod Security checks on the pod's metadata and spec, taken
    /// from the tape once per request and shared by every such rule.
    PodSecurity,
    Interpreter(String),
}

#[derive(Debug)]
struct RulePlan {
    policy: usize,
    rule: usize,
    plan: Plan,
    /// The rule's selector: rules with equal `match` and `exclude` share one, and a request
    /// decides each selector once.
    selector: u32,
}

/// One line of `--explain`: a rule and how it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explain {
    pub policy: String,
    pub rule: String,
    /// `None` when the rule runs natively, else why it runs in the interpreter.
    pub interpreter: Option<String>,
    /// How the set engine answers it: `native`, `tape` (conditions and foreach on the
    /// document, patterns native), `walk` (the interpreter's pattern code on the document),
    /// `pod-security` or `interpreter`.
    pub engine: &'static str,
}

/// A compiled policy set. Immutable; share it by `Arc`.
pub struct CompiledSet {
    policies: Vec<PolicyIr>,
    plans: Vec<RulePlan>,
    native: Vec<CompiledPattern>,
    /// The JMESPath expressions of the [`Plan::Conditions`] rules.
    programs: tape::Programs,
    keys: KeyTable,
    /// Kind -> plan indices, in policy and rule order, the plans of `any_kind` included.
    by_kind: HashMap<String, Vec<u32>>,
    /// Plans that can match any kind: the candidates of a kind no rule names.
    any_kind: Vec<u32>,
}

/// A rule result in compact form: Kyverno's fixed pass and skip messages are left implicit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetResult {
    pub policy: u32,
    pub rule: u32,
    pub status: Status,
    /// The message, or which of Kyverno's fixed ones it is: those are written only when asked
    /// ([`CompiledSet::rule_result`]), since the webhook reads the messages of failures alone
    /// and most results are passes.
    pub message: Msg,
    pub enforce: bool,
    /// Which engine answered.
    pub route: Route,
}

/// Kyverno's fixed messages, by the rule's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fixed {
    /// `validation rule '<rule>' passed.`
    Passed,
    /// `validation rule '<rule>' anyPattern[<k>] passed.`
    AnyPatternPassed(u32),
    /// `rule passed` (a `foreach` rule).
    RulePassed,
    /// `rule skipped`.
    RuleSkipped,
    /// `Validation rule '<rule>' passed.` (a `podSecurity` rule).
    PodSecurityPassed,
}

impl Fixed {
    /// The message for rule `rule`.
    pub fn text(self, rule: &str) -> String {
        match self {
            Fixed::Passed => format!("validation rule '{rule}' passed."),
            Fixed::AnyPatternPassed(k) => format!("validation rule '{rule}' anyPattern[{k}] passed."),
            Fixed::RulePassed => "rule passed".to_owned(),
            Fixed::RuleSkipped => "rule skipped".to_owned(),
            Fixed::PodSecurityPassed => crate::podsecurity::passed_message(rule),
        }
    }
}

/// A rule's message: its text, or a fixed one left unwritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    Text(String),
    Fixed(Fixed),
}

impl Msg {
    /// The text, when the message is not a fixed one.
    pub fn text(&self) -> Option<&str> {
        match self {
            Msg::Text(text) => Some(text),
            Msg::Fixed(_) => None,
        }
    }
}

/// Which engine answered a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A native matcher (Cranelift code).
    Native,
    /// Preconditions, `deny` or `foreach` on the tape, with native matchers for their patterns.
    Tape,
    /// The interpreter's pattern walk, on the tape.
    Walk,
    /// The interpreter, for the whole policy.
    Interpreter,
}

impl CompiledSet {
    /// Compiles lowered policies.
    pub fn new(policies: Vec<PolicyIr>) -> Result<CompiledSet, String> {
        let mut jit = Jit::new()?;
        let mut keys = KeyTable::default();
        let mut programs = tape::Programs::default();
        let mut plans = Vec::new();
        let mut selectors: HashMap<String, u32> = HashMap::new();
        for (pi, policy) in policies.iter().enumerate() {
            for (ri, rule) in policy.rules.iter().enumerate() {
                // A rule whose selector cannot be written as text gets one of its own.
                let fresh = u32::try_from(plans.len()).unwrap_or(u32::MAX) | 1 << 31;
                let selector = match select::selector_key(rule) {
                    Some(key) => {
                        let next = u32::try_from(selectors.len()).unwrap_or(u32::MAX);
                        *selectors.entry(key).or_insert(next)
                    }
                    None => fresh,
                };
                let plan = match &rule.body {
                    RuleBody::Validate(v) if plain(rule) && matches!(v.check, Check::Pattern(_) | Check::AnyPattern(_)) => {
                        match static_patterns(&v.check) {
                            Ok(patterns) => match compile_patterns(&patterns, &mut jit, &mut keys) {
                                Ok(ids) => Plan::Native(ids),
                                Err(why) => Plan::Walk(why),
                            },
                            Err(why) => Plan::Interpreter(why),
                        }
                    }
                    RuleBody::Validate(v) if plain(rule) && matches!(v.check, Check::PodSecurity(_)) => Plan::PodSecurity,
                    // Preconditions, deny and foreach: on the tape when every expression is.
                    RuleBody::Validate(_) => match conds::plan(rule, &mut jit, &mut keys, &mut programs) {
                        Ok(plan) => Plan::Conditions(Box::new(plan)),
                        Err(why) => Plan::Interpreter(why),
                    },
                    _ => Plan::Interpreter("not a validate rule".into()),
                };
                plans.push(RulePlan { policy: pi, rule: ri, plan, selector });
            }
        }
        let native = jit.finish()?;
        // The request envelope's keys are looked up by name, not id, so they need no interning.
        let mut by_kind: HashMap<String, Vec<u32>> = HashMap::new();
        let mut any_kind = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            let rule = policies.get(plan.policy).and_then(|p| p.rules.get(plan.rule));
            // Mutate and generate rules give no validation result (they run in the mutation
            // stage), so they are no candidates here.
            if rule.is_some_and(|r| matches!(r.body, RuleBody::Mutate(_) | RuleBody::Generate(_))) {
                continue;
            }
            match rule.and_then(|r| candidate_kinds(&r.matcher)) {
                Some(kinds) => {
                    for k in kinds {
                        let list = by_kind.entry(k).or_default();
                        if list.last() != Some(&(i as u32)) {
                            list.push(i as u32);
                        }
                    }
                }
                None => any_kind.push(i as u32),
            }
        }
        // Each kind's list holds the rules that can match any kind too, in set order, so a
        // request reads its candidates as they are.
        for list in by_kind.values_mut() {
            list.extend(&any_kind);
            list.sort_unstable();
        }
        Ok(CompiledSet { policies, plans, native, programs, keys, by_kind, any_kind })
    }

    pub fn policies(&self) -> &[PolicyIr] {
        &self.policies
    }

    pub fn rule_count(&self) -> usize {
        self.plans.len()
    }

    /// The key table documents for this set must be parsed with.
    pub fn keys(&self) -> &KeyTable {
        &self.keys
    }

    /// Which rules run natively, and why the others do not.
    pub fn explain(&self) -> Vec<Explain> {
        self.plans
            .iter()
            .map(|p| {
                let policy = self.policies.get(p.policy);
                Explain {
                    policy: policy.map(|x| x.name.clone()).unwrap_or_default(),
                    rule: policy.and_then(|x| x.rules.get(p.rule)).map(|r| r.name.clone()).unwrap_or_default(),
                    engine: match &p.plan {
                        Plan::Native(_) => "native",
                        Plan::Conditions(_) => "tape",
                        Plan::Walk(_) => "walk",
                        Plan::PodSecurity => "pod-security",
                        Plan::Interpreter(_) => "interpreter",
                    },
                    interpreter: match &p.plan {
                        Plan::Native(_) | Plan::Conditions(_) => None,
                        Plan::Walk(why) => Some(format!("walked on the tape by the interpreter's pattern code: {why}")),
                        Plan::PodSecurity => Some("the Pod Security checks table (Rust, not JIT-compiled), on the pod taken from the tape".to_owned()),
                        Plan::Interpreter(why) => Some(why.clone()),
                    },
                }
            })
            .collect()
    }

    /// The plan indices a resource of `kind` may select, in policy and rule order.
    /// The rules that can match a resource of this kind, from the index built at load, in set
    /// order (plan indices; a policy's rules are consecutive).
    pub fn candidates(&self, kind: &str) -> Vec<u32> {
        self.candidate_plans(kind).to_vec()
    }

    /// [`CompiledSet::candidates`], as the index keeps them.
    fn candidate_plans(&self, kind: &str) -> &[u32] {
        self.by_kind.get(kind).map_or(self.any_kind.as_slice(), Vec::as_slice)
    }

    /// Evaluates a request: the candidate rules of its kind, each answered by its plan (the
    /// interpreter only when a plan cannot answer), results appended to `out`. Returns the
    /// number of candidate rules looked at.
    pub fn evaluate(&self, req: &SetRequest, out: &mut Vec<SetResult>) -> usize {
        let doc = req.doc;
        let object = req.resource;
        let subject = select::Subject::new(req);
        let candidates = self.candidate_plans(subject.kind);
        // The interpreter's inputs, built on the first policy that needs them and shared by the
        // rest: the resource as a `Value`, the request, and one evaluation (one JMESPath context).
        let values: OnceCell<(Value, Option<Value>)> = OnceCell::new();
        let request: OnceCell<Request> = OnceCell::new();
        let mut evaluation: Option<engine::Evaluation> = None;
        let memo = tape::Memo::default();
        let inputs = conds::Inputs {
            doc,
            operation: req.operation,
            resource: object,
            // Kyverno's context holds no `request.object` on DELETE.
            object: (req.operation != "DELETE").then_some(req.object),
            old_object: req.old_object,
            programs: &self.programs,
            native: &self.native,
            memo: &memo,
        };
        // The nodes of the pod's metadata and spec, and the results of its checks, for the
        // podSecurity rules.
        let pod: OnceCell<(Pod, CheckCache)> = OnceCell::new();
        let mut touched = 0;
        let mut i = 0;
        while i < candidates.len() {
            // One policy at a time: its candidate rules are consecutive.
            let policy_index = self.plan(candidates.get(i).copied()).map_or(usize::MAX, |p| p.policy);
            let mut end = i;
            while end < candidates.len() && self.plan(candidates.get(end).copied()).map(|p| p.policy) == Some(policy_index) {
                end += 1;
            }
            let group = candidates.get(i..end).unwrap_or(&[]);
            i = end;
            let Some(policy) = self.policies.get(policy_index) else { continue };
            touched += group.len();
            if let Some(ns) = &policy.namespace
                && doc.get_str(object, &["metadata", "namespace"]) != Some(ns.as_str())
            {
                continue;
            }
            if self.native_policy(policy_index, policy, group, req, &subject, &inputs, &pod, out) {
                continue;
            }
            // The slow path: the interpreter evaluates the whole policy.
            let (value, old) = values.get_or_init(|| (doc.to_value(req.object), req.old_object.map(|o| doc.to_value(o))));
            let r = request.get_or_init(|| Request {
                operation: req.operation,
                object: value,
                old_object: old.as_ref(),
                user: req.user,
                namespace_labels: None,
                variables: &[],
                rule_variables: None,
            });
            let evaluation = evaluation.get_or_insert_with(|| engine::Evaluation::new(r));
            for result in evaluation.policy(policy) {
                let rule = policy.rules.iter().position(|x| x.name == result.rule).unwrap_or(usize::MAX);
                out.push(SetResult {
                    policy: policy_index as u32,
                    rule: rule as u32,
                    status: result.status,
                    message: Msg::Text(result.message),
                    enforce: result.enforce,
                    route: Route::Interpreter,
                });
            }
        }
        touched
    }

    fn plan(&self, index: Option<u32>) -> Option<&RulePlan> {
        self.plans.get(index? as usize)
    }

    /// Answers a policy natively when every selected rule runs natively and passes. Returns
    /// false (and leaves `out` untouched) when the interpreter has to take over.
    #[allow(clippy::too_many_arguments)]
    fn native_policy<'d>(&self, pi: usize, policy: &PolicyIr, group: &[u32], req: &SetRequest<'d, '_>, subject: &select::Subject, inputs: &conds::Inputs, pod: &OnceCell<(Pod<'d>, CheckCache)>, out: &mut Vec<SetResult>) -> bool {
        let mark = out.len();
        for &plan_index in group {
            let Some(plan) = self.plans.get(plan_index as usize) else { continue };
            let Some(rule) = policy.rules.get(plan.rule) else { continue };
            if !select::selected_by(rule, plan.selector, req, subject) {
                continue;
            }
            let outcome = match &plan.plan {
                Plan::Native(ids) => self.pattern_rule(rule, ids, req),
                Plan::Walk(_) => walk_rule(rule, req.doc, req.resource),
                Plan::PodSecurity => pod_security(rule, req, subject.kind, pod),
                Plan::Conditions(cp) => conds::run(cp, rule, inputs).map(|(status, message)| (status, message, Route::Tape)),
                Plan::Interpreter(_) => None,
            };
            let Some((status, message, route)) = outcome else {
                out.truncate(mark);
                return false;
            };
            out.push(SetResult { policy: pi as u32, rule: plan.rule as u32, status, message, enforce: rule.enforce.unwrap_or(policy.enforce), route });
            if policy.apply_one && status != Status::Skip {
                return true;
            }
        }
        true
    }

    /// A static pattern or anyPattern rule: native matchers decide a pass; anything else is
    /// walked again on the tape by the interpreter's code for Kyverno's status, path and message.
    fn pattern_rule(&self, rule: &RuleIr, ids: &[usize], req: &SetRequest) -> Option<(Status, Msg, Route)> {
        let run = |id: usize| self.native.get(id).map(|c| c.run(req.doc, req.resource));
        match ids {
            [one] if run(*one) == Some(Verdict::Pass) => return Some((Status::Pass, Msg::Fixed(Fixed::Passed), Route::Native)),
            [_] => {}
            // anyPattern: the first passing item decides; its index is in the message.
            many => {
                if let Some(k) = many.iter().position(|&id| run(id) == Some(Verdict::Pass)) {
                    return Some((Status::Pass, Msg::Fixed(Fixed::AnyPatternPassed(k as u32)), Route::Native));
                }
            }
        }
        walk_rule(rule, req.doc, req.resource)
    }

    /// The full form of a result, as [`engine::evaluate`] returns it.
    pub fn rule_result(&self, r: &SetResult) -> RuleResult {
        let policy = self.policies.get(r.policy as usize);
        let rule = policy.and_then(|p| p.rules.get(r.rule as usize)).map(|x| x.name.clone()).unwrap_or_default();
        let message = match &r.message {
            Msg::Text(text) => text.clone(),
            Msg::Fixed(fixed) => fixed.text(&rule),
        };
        RuleResult { policy: policy.map(|p| p.name.clone()).unwrap_or_default(), rule, status: r.status, message, enforce: r.enforce }
    }
}

/// A request as the set engine sees it: nodes of one parsed document.
pub struct SetRequest<'d, 'a> {
    pub doc: &'d Doc<'a>,
    pub operation: &'d str,
    /// The node matched against: the object, or for DELETE the old object.
    pub resource: u32,
    pub object: u32,
    pub old_object: Option<u32>,
    pub user: &'d UserInfo,
}

/// A static pattern or anyPattern rule walked on the tape by the interpreter's pattern code
/// ([`match_tree`]); `None` when its message needs the interpreter's context.
pub(super) fn walk_rule(rule: &RuleIr, doc: &Doc, resource: u32) -> Option<(Status, Msg, Route)> {
    let RuleBody::Validate(v) = &rule.body else { return None };
    let (status, text) = walk_check(&rule.name, &v.check, v.message.as_deref(), doc, resource)?;
    Some((status, Msg::Text(text), Route::Walk))
}

/// A static pattern or anyPattern check walked on `target` as the interpreter's `run_check`
/// does, with its status and message; `None` when the message has variables (substituting
/// them needs the interpreter's context) or an item cannot be walked.
pub(super) fn walk_check(name: &str, check: &Check, message: Option<&str>, doc: &Doc, target: u32) -> Option<(Status, String)> {
    let target = DocNode { doc, id: target };
    // The rule's message is needed only when the pattern does not match.
    let needs_context = Cell::new(false);
    let message = || match message {
        Some(m) if m.contains("{{") => {
            needs_context.set(true);
            None
        }
        Some(m) if !m.is_empty() => Some(m.to_owned()),
        _ => None,
    };
    let (status, text) = match check {
        Check::Pattern(p) => engine::pattern_outcome(name, match_tree(target, p), message),
        Check::AnyPattern(items) => {
            let items = items.iter().map(|item| match item {
                PatternItem::Static(p) => Ok(match_tree(target, p)),
                PatternItem::Dynamic(_) => Err((Status::Error, String::new())),
            });
            engine::any_pattern_outcome(name, items, message)
        }
        _ => return None,
    };
    if needs_context.get() || (status == Status::Error && text.is_empty()) {
        return None;
    }
    Some((status, text))
}

/// Whether a rule has nothing to do before its check: no preconditions, context entries or CEL
/// preconditions.
fn plain(rule: &RuleIr) -> bool {
    rule.preconditions.is_none() && rule.context.is_empty() && rule.cel_preconditions.is_empty()
}

/// A podSecurity rule, as the interpreter runs it, on the pod read in place on the tape (its
/// nodes found, and its checks run, once per request and version, shared by every podSecurity
/// rule).
fn pod_security<'d>(rule: &RuleIr, req: &SetRequest<'d, '_>, kind: &str, pod: &OnceCell<(Pod<'d>, CheckCache)>) -> Option<(Status, Msg, Route)> {
    let RuleBody::Validate(v) = &rule.body else { return None };
    let Check::PodSecurity(ps) = &v.check else { return None };
    // Kyverno skips Pod Security checks on DELETE requests.
    if req.operation == "DELETE" {
        return Some((Status::Skip, Msg::Fixed(Fixed::RuleSkipped), Route::Tape));
    }
    let doc = req.doc;
    // Node 0 of the tape is a null, which stands for a missing part.
    let (pod, cache) = pod.get_or_init(|| {
        let fetch = |path: &[&str]| doc.path(req.resource, path).unwrap_or(0);
        let (meta, spec) = crate::podsecurity::pod_paths(kind).map_or((0, 0), |(meta, spec)| (fetch(meta), fetch(spec)));
        (crate::podsecurity::pod(Node::Tape(doc, meta), Node::Tape(doc, spec)), CheckCache::default())
    });
    Some(match crate::podsecurity::validate_outcome_on(&rule.name, ps, kind, pod, cache) {
        Some((status, message)) => (status, Msg::Text(message), Route::Tape),
        None => (Status::Pass, Msg::Fixed(Fixed::PodSecurityPassed), Route::Tape),
    })
}

/// The patterns of a `pattern` or `anyPattern` check when none holds variables, or why not.
pub(super) fn static_patterns(check: &Check) -> Result<Vec<&Pattern>, String> {
    match check {
        Check::Pattern(p) => Ok(vec![p]),
        Check::DynamicPattern(_) => Err("the pattern holds {{ }} variables, substituted per request".into()),
        Check::AnyPattern(items) => items
            .iter()
            .map(|i| match i {
                PatternItem::Static(p) => Ok(p),
                PatternItem::Dynamic(_) => Err("an anyPattern item holds {{ }} variables (substituted per request) or does not lower".into()),
            })
            .collect(),
        _ => Err("not a pattern".into()),
    }
}

/// Native matchers for patterns: their ids, or why one does not compile.
pub(super) fn compile_patterns(patterns: &[&Pattern], jit: &mut Jit, keys: &mut KeyTable) -> Result<Vec<usize>, String> {
    patterns.iter().map(|p| jit.add(p, keys).map_err(|e| e.to_string())).collect()
}

/// The kinds a rule's match can select, or `None` when it can select any kind.
fn candidate_kinds(m: &Match) -> Option<Vec<String>> {
    let literal = |f: &palisade_compiler::ir::policy::Filter| -> Option<Vec<String>> {
        if f.kinds.is_empty() || f.kinds.iter().any(|k| !k.kind.is_literal()) {
            return None;
        }
        Some(f.kinds.iter().map(|k| k.kind.pattern().to_owned()).collect())
    };
    if !m.any.is_empty() {
        // Any filter may select: the union, unless one is unconstrained.
        let mut all = Vec::new();
        for f in &m.any {
            all.extend(literal(f)?);
        }
        return Some(all);
    }
    if !m.all.is_empty() {
        // Every filter must select: any one constrained filter bounds the kinds.
        return m.all.iter().find_map(literal);
    }
    // An empty match selects nothing.
    Some(Vec::new())
}
