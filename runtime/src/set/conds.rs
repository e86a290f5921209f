//! Rules with preconditions, `deny` conditions or `foreach`, answered on the tape.
//!
//! Each such rule gets a [`CondPlan`] at load: its JMESPath expressions are parsed into the
//! set's [`Programs`], its patterns (the rule's own after preconditions, or each `foreach`
//! entry's) compiled to native matchers. Per request the plan runs the interpreter's steps in
//! the interpreter's order ([`crate::engine`]'s `run_rule`, `foreach_result`, `run_entry`), with
//! the conditions evaluated by the same [`Conditions::evaluate_in`] over a [`Source`] that reads
//! the tape. So operators, substitution and condition messages are shared code, not a second
//! implementation. Each whole-template operand knows its expression by id (given at load), and
//! its value is compared where it sits on the document: a passing condition copies nothing.
//!
//! A plan answers only what it can answer exactly: a pass, a skip by preconditions, a `deny`
//! failure, and a pattern that does not pass (walked on the tape by the interpreter's pattern
//! code), each when its message has no variables. Anything else (an expression the tape does
//! not model, a message to substitute, an error the interpreter words) returns `None`, and the
//! set engine gives the policy to the interpreter, which then decides the result and writes
//! the message.

use std::cell::Cell;

use serde_json::Value;

use palisade_compiler::ir::policy::{Check, Foreach, RuleIr, RuleBody};

use super::tape::{Answer, Items, Memo, Programs, Scope, Stop, V};
use super::{Fixed, Msg};
use crate::conditions::{Conditions, NO_SLOT, Source};
use crate::doc::{Doc, KeyTable, TAG_NULL, TAG_OBJECT};
use crate::engine::Status;
use crate::jit::{CompiledPattern, Jit, Verdict};

/// How a rule with conditions is answered on the tape.
#[derive(Debug)]
pub(super) struct CondPlan {
    preconditions: Option<Conditions<'static>>,
    check: CondCheck,
}

#[derive(Debug)]
enum CondCheck {
    /// A static pattern (one id) or anyPattern (one id per item), after the preconditions.
    Patterns { ids: Vec<usize>, any: bool },
    Deny(Conditions<'static>),
    Foreach(Vec<EntryPlan>),
}

#[derive(Debug)]
struct EntryPlan {
    /// The `list` expression's id in [`Programs`].
    list: u32,
    preconditions: Option<Conditions<'static>>,
    check: EntryCheck,
}

#[derive(Debug)]
enum EntryCheck {
    /// A static pattern, or the items of an anyPattern.
    Patterns { ids: Vec<usize> },
    Deny(Conditions<'static>),
}

/// Plans a validate rule whose preconditions, `deny` or `foreach` the tape can answer.
pub(super) fn plan(rule: &RuleIr, jit: &mut Jit, keys: &mut KeyTable, programs: &mut Programs) -> Result<CondPlan, String> {
    let RuleBody::Validate(v) = &rule.body else {
        return Err("not a validate rule".into());
    };
    if !rule.context.is_empty() {
        return Err("context entries (interpreter)".into());
    }
    if !rule.cel_preconditions.is_empty() {
        return Err("CEL preconditions (interpreter)".into());
    }
    if let Some(pre) = &rule.preconditions {
        programs.add_templates(pre, false, keys)?;
    }
    let check = match &v.check {
        Check::Pattern(_) | Check::AnyPattern(_) => {
            let (ids, any) = patterns(&v.check, jit, keys)?;
            CondCheck::Patterns { ids, any }
        }
        Check::Deny(conds) => {
            programs.add_templates(conds, false, keys)?;
            CondCheck::Deny(conditions(conds, programs))
        }
        Check::Foreach(entries) => CondCheck::Foreach(entries.iter().map(|e| entry_plan(e, jit, keys, programs)).collect::<Result<_, _>>()?),
        Check::DynamicPattern(_) => return Err("the pattern holds {{ }} variables, substituted per request".into()),
        Check::Cel(_) => return Err("validate.cel is CEL (interpreter)".into()),
        Check::PodSecurity(_) => return Err("validate.podSecurity runs the Pod Security checks table (interpreter)".into()),
        Check::Unsupported(what) => return Err(format!("{what} is not compiled")),
    };
    Ok(CondPlan { preconditions: rule.preconditions.as_ref().map(|p| conditions(p, programs)), check })
}

/// Conditions whose whole-template operands name their expressions by id in `programs` (where
/// `add_templates` put them).
fn conditions(conds: &Value, programs: &Programs) -> Conditions<'static> {
    let mut c = Conditions::new(conds).into_owned();
    c.assign_slots(&mut |expr| programs.id(expr));
    c
}

fn entry_plan(entry: &Foreach, jit: &mut Jit, keys: &mut KeyTable, programs: &mut Programs) -> Result<EntryPlan, String> {
    if !entry.context.is_empty() {
        return Err("foreach context entries (interpreter)".into());
    }
    let list = programs.add(&entry.list, false, keys)?;
    if let Some(pre) = &entry.preconditions {
        programs.add_templates(pre, true, keys)?;
    }
    let check = match &entry.check {
        Check::Pattern(_) | Check::AnyPattern(_) => {
            let (ids, _) = patterns(&entry.check, jit, keys)?;
            EntryCheck::Patterns { ids }
        }
        Check::Deny(conds) => {
            programs.add_templates(conds, true, keys)?;
            EntryCheck::Deny(conditions(conds, programs))
        }
        Check::Foreach(_) => return Err("a nested foreach (interpreter)".into()),
        _ => return Err("a foreach check other than pattern, anyPattern or deny (interpreter)".into()),
    };
    Ok(EntryPlan { list, preconditions: entry.preconditions.as_ref().map(|p| conditions(p, programs)), check })
}

fn patterns(check: &Check, jit: &mut Jit, keys: &mut KeyTable) -> Result<(Vec<usize>, bool), String> {
    let ids = super::compile_patterns(&super::static_patterns(check)?, jit, keys)?;
    Ok((ids, matches!(check, Check::AnyPattern(_))))
}

/// What a rule's evaluation needs from the request and the set.
pub(super) struct Inputs<'s, 'a> {
    pub doc: &'s Doc<'a>,
    pub operation: &'s str,
    /// The node patterns match at the rule level: the object, or the old object on DELETE.
    pub resource: u32,
    pub object: Option<u32>,
    pub old_object: Option<u32>,
    pub programs: &'s Programs,
    pub native: &'s [CompiledPattern],
    /// The request's expression results, shared by its rules.
    pub memo: &'s Memo,
}

/// A rule's status and message (`None` for Kyverno's standard pass message), or `None` when
/// the interpreter must answer.
pub(super) type Outcome = Option<(Status, Msg)>;

pub(super) fn run(plan: &CondPlan, rule: &RuleIr, inputs: &Inputs) -> Outcome {
    let RuleBody::Validate(v) = &rule.body else { return None };
    let scope = Scope { doc: inputs.doc, operation: inputs.operation, object: inputs.object, old_object: inputs.old_object, element: None, memo: Some(inputs.memo) };
    if let Some(pre) = &plan.preconditions {
        let (held, msg) = evaluate(pre, inputs.programs, &scope)?;
        if !held {
            let m = if msg.is_empty() { "preconditions not met".to_owned() } else { format!("preconditions not met; {msg}") };
            return Some((Status::Skip, Msg::Text(m)));
        }
    }
    let name = &rule.name;
    match &plan.check {
        CondCheck::Patterns { ids, any } => match first_pass(ids, inputs, inputs.resource)? {
            Some(k) if *any => Some((Status::Pass, Msg::Fixed(Fixed::AnyPatternPassed(k as u32)))),
            Some(_) => Some((Status::Pass, Msg::Fixed(Fixed::Passed))),
            // Not matched: the interpreter's pattern code words it, on the tape.
            None => super::walk_rule(rule, inputs.doc, inputs.resource).map(|(status, message, _)| (status, message)),
        },
        CondCheck::Deny(conds) => {
            match evaluate(conds, inputs.programs, &scope)? {
                (false, _) => Some((Status::Pass, Msg::Fixed(Fixed::Passed))),
                (true, msg) => Some((Status::Fail, Msg::Text(deny_message(name, v.message.as_deref(), &msg)?))),
            }
        }
        CondCheck::Foreach(plans) => {
            let Check::Foreach(entries) = &v.check else { return None };
            foreach(plans, entries, rule, v.message.as_deref(), inputs, &scope)
        }
    }
}

/// `foreach` as the interpreter runs it at the top level: the first element that fails decides
/// the rule; a rule where no element applied is skipped.
fn foreach(plans: &[EntryPlan], entries: &[Foreach], rule: &RuleIr, message: Option<&str>, inputs: &Inputs, scope: &Scope) -> Outcome {
    let delete = inputs.operation == "DELETE";
    let mut applied = 0usize;
    for (plan, entry) in plans.iter().zip(entries) {
        // Rules share lists (most capability rules walk the same three container lists), so
        // the list is the request's memoised value, and its elements are read in place.
        let list = match inputs.programs.value(plan.list, scope) {
            Ok(list) => list,
            // The interpreter skips an entry whose list does not evaluate.
            Err(Stop::UnknownKey) => continue,
            Err(Stop::Bail) => return None,
        };
        // A list that is not an array is one element, as the interpreter takes it.
        let elements = Items::of(&list, inputs.doc);
        for index in 0..elements.len() {
            let element = elements.get(index)?;
            let element = element.as_ref();
            let is_object = match element {
                V::Node(id) => match inputs.doc.node(*id).tag {
                    TAG_NULL => continue,
                    tag => tag == TAG_OBJECT,
                },
                V::Val(serde_json::Value::Null) => continue,
                V::Val(v) => v.is_object(),
                V::List(_) | V::Key(_) => false,
                V::Root | V::Request => return None,
            };
            let scoped = match entry.element_scope {
                // An element that cannot be the pattern's root is an error the interpreter words.
                Some(true) if !is_object => return None,
                Some(explicit) => explicit,
                None => is_object,
            };
            let inner = Scope { element: Some((element, index)), ..*scope };
            let held = match &plan.preconditions {
                Some(pre) => evaluate(pre, inputs.programs, &inner)?.0,
                None => true,
            };
            if !held {
                continue;
            }
            match &plan.check {
                EntryCheck::Patterns { ids } => {
                    // A pattern on the resource of a DELETE request inside foreach is Kyverno's
                    // empty response.
                    if !scoped && delete {
                        continue;
                    }
                    let target = if scoped {
                        match element {
                            V::Node(id) => *id,
                            _ => return None,
                        }
                    } else {
                        inputs.resource
                    };
                    match verdicts(ids, inputs, target) {
                        Some(Verdicts::Pass) => applied += 1,
                        Some(Verdicts::Skip) => continue,
                        // Not a pass: the interpreter's pattern walk words the element's
                        // outcome, which decides as in its `foreach_elements`.
                        None => {
                            let (status, text) = super::walk_check(&rule.name, &entry.check, message, inputs.doc, target)?;
                            match status {
                                Status::Skip => continue,
                                Status::Pass => applied += 1,
                                Status::Error if index + 1 < elements.len() => continue,
                                status => return Some((status, Msg::Text(format!("validation failure: {text}")))),
                            }
                        }
                    }
                }
                EntryCheck::Deny(conds) => {
                    match evaluate(conds, inputs.programs, &inner)? {
                        (false, _) => applied += 1,
                        (true, msg) => {
                            let m = deny_message(&rule.name, message, &msg)?;
                            return Some((Status::Fail, Msg::Text(format!("validation failure: {m}"))));
                        }
                    }
                }
            }
        }
    }
    if applied == 0 {
        return Some((Status::Skip, Msg::Fixed(Fixed::RuleSkipped)));
    }
    Some((Status::Pass, Msg::Fixed(Fixed::RulePassed)))
}

enum Verdicts {
    Pass,
    Skip,
}

/// A pattern's (or anyPattern's) outcome inside `foreach`, where the interpreter counts a pass,
/// continues past a skip, and decides the rule on anything else (`None`: walked for its words).
fn verdicts(ids: &[usize], inputs: &Inputs, target: u32) -> Option<Verdicts> {
    // As the interpreter's anyPattern: any item that passes passes; only skips skip; a failure
    // (or an empty list) is the interpreter's to word.
    let mut all_skipped = !ids.is_empty();
    for id in ids {
        match inputs.native.get(*id)?.run(inputs.doc, target) {
            Verdict::Pass => return Some(Verdicts::Pass),
            Verdict::Skip => {}
            Verdict::NoMatch => all_skipped = false,
        }
    }
    all_skipped.then_some(Verdicts::Skip)
}

/// The index of the first pattern that passes, `Some(None)` when none does.
fn first_pass(ids: &[usize], inputs: &Inputs, target: u32) -> Option<Option<usize>> {
    for (k, id) in ids.iter().enumerate() {
        if inputs.native.get(*id)?.run(inputs.doc, target) == Verdict::Pass {
            return Some(Some(k));
        }
    }
    Some(None)
}

/// The tape as a [`Source`] of condition operands. Any expression the tape cannot answer (or an
/// unknown key, whose error the interpreter words) marks the evaluation as the interpreter's.
struct Tape<'s, 'd, 'a> {
    programs: &'s Programs,
    scope: &'s Scope<'d, 'a>,
    bailed: Cell<bool>,
}

impl<'d> Tape<'_, 'd, '_> {
    fn bail<T>(&self) -> Result<T, String> {
        self.bailed.set(true);
        Err("evaluated by the interpreter".to_owned())
    }
}

impl<'d> Source for Tape<'_, 'd, '_> {
    type Out<'o>
        = Answer<'d>
    where
        Self: 'o;

    fn operand(&self, expr: &str, slot: u32) -> Result<Answer<'d>, String> {
        let id = if slot == NO_SLOT { self.programs.id(expr) } else { Some(slot) };
        match id.map(|id| self.programs.value(id, self.scope)) {
            Some(Ok(value)) => Ok(Answer { doc: self.scope.doc, value }),
            _ => self.bail(),
        }
    }

    fn query(&self, expr: &str) -> Result<Value, String> {
        self.programs.query(expr, self.scope).or_else(|_| self.bail())
    }
}

/// Conditions through [`Conditions::evaluate_in`] on the tape; `None` when any expression
/// needed the interpreter, or the conditions errored.
fn evaluate(conds: &Conditions, programs: &Programs, scope: &Scope) -> Option<(bool, String)> {
    let tape = Tape { programs, scope, bailed: Cell::new(false) };
    let result = conds.evaluate_in(&tape);
    if tape.bailed.get() {
        return None;
    }
    result.ok()
}

/// The message of a `deny` failure: the rule's message (only without variables; substituting
/// one needs the interpreter's context) and the failed conditions' messages.
fn deny_message(name: &str, message: Option<&str>, conditions: &str) -> Option<String> {
    let message = message.filter(|m| !m.is_empty());
    if message.is_some_and(|m| m.contains("{{")) {
        return None;
    }
    let parts: Vec<&str> = message.into_iter().chain((!conditions.is_empty()).then_some(conditions)).collect();
    Some(if parts.is_empty() { format!("validation error: rule {name} failed") } else { parts.join("; ") })
}

#[cfg(test)]
mod tests {
    //! The condition operators on the tape against the same operators on `Value`s.

    use serde_json::{Value, json};

    use super::*;
    use crate::doc::{Doc, KeyTable};

    /// Every case of `tests/data/condition_operators.jsonl` (operator, key, value, expected):
    /// with both operands as JSON values, and with the key, the value or both read from a
    /// request on the tape (as document nodes, and as a list an expression builds).
    #[test]
    fn operators_on_the_tape_agree_with_values() {
        let text = include_str!("../../tests/data/condition_operators.jsonl");
        let mut cases = 0;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            cases += 1;
            let case: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            let [Value::String(op), key, value, Value::Bool(expected)] = case.as_array().map(Vec::as_slice).unwrap_or_default() else {
                panic!("line {}: not [operator, key, value, expected]", i + 1);
            };
            let condition = |key: &Value, value: &Value| json!([{"key": key, "operator": op, "value": value}]);
            let no_context = |_: &str| -> Result<Value, String> { Err("no context".to_owned()) };
            let held = evaluate_values(&condition(key, value), &no_context);
            assert_eq!(held, *expected, "line {}: {line} on values", i + 1);

            let bytes = serde_json::to_vec(&json!({"object": {"k": key, "v": value}})).unwrap_or_default();
            // The programs look fields up by key id: the document is parsed with their keys.
            let mut keys = KeyTable::default();
            for k in ["request", "object", "k", "v"] {
                keys.intern(k);
            }
            let doc = Doc::parse(&bytes, &keys).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            let object = doc.get(doc.root(), "object");
            let (k, v) = (json!("{{ request.object.k }}"), json!("{{ request.object.v }}"));
            let mut forms = vec![("key on the tape", condition(&k, value)), ("value on the tape", condition(key, &v)), ("both on the tape", condition(&k, &v))];
            // A list of scalars read through a projection is a list the evaluation builds.
            let scalars = |x: &Value| x.as_array().is_some_and(|a| a.iter().all(|e| !e.is_array() && !e.is_null()));
            if scalars(value) {
                forms.push(("value projected", condition(key, &json!("{{ request.object.v[] }}"))));
            }
            if scalars(key) {
                forms.push(("key projected", condition(&json!("{{ request.object.k[*] }}"), value)));
            }
            for (form, conds) in forms {
                let mut programs = Programs::default();
                programs.add_templates(&conds, false, &mut keys.clone()).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
                // A memo belongs to one set's programs (it knows expressions by id).
                let memo = Memo::default();
                let scope = Scope { doc: &doc, operation: "CREATE", object, old_object: None, element: None, memo: Some(&memo) };
                let got = evaluate(&conditions(&conds, &programs), &programs, &scope).map(|(held, _)| held);
                assert_eq!(got, Some(*expected), "line {}: {line} with the {form}", i + 1);
            }
        }
        assert!(cases >= 60, "{cases} cases");
    }

    fn evaluate_values(conds: &Value, query: &dyn Fn(&str) -> Result<Value, String>) -> bool {
        crate::conditions::evaluate(conds, query).map(|(held, _)| held).unwrap_or_else(|e| panic!("{conds}: {e}"))
    }

    /// Messages and errors read as the interpreter's: the messages of the conditions that
    /// decided, an unknown key on the tape left to the interpreter.
    #[test]
    fn messages_and_unknown_keys() {
        let bytes = br#"{"object": {"spec": {"containers": [{"name": "a"}]}}}"#;
        let mut keys = KeyTable::default();
        for k in ["request", "object", "spec", "containers", "name", "missing"] {
            keys.intern(k);
        }
        let doc = Doc::parse(bytes, &keys).unwrap_or_else(|e| panic!("{e}"));
        let object = doc.get(doc.root(), "object");
        let scope = Scope { doc: &doc, operation: "CREATE", object, old_object: None, element: None, memo: None };
        let cases = [
            (
                json!({"any": [{"key": "{{ request.operation }}", "operator": "Equals", "value": "DELETE", "message": "not a delete"},
                               {"key": "{{ request.object.spec.containers[].name }}", "operator": "AnyIn", "value": ["a"], "message": "named a"}]}),
                Some((true, "named a".to_owned())),
            ),
            (
                json!({"all": [{"key": "{{ request.operation }}", "operator": "NotEquals", "value": "DELETE", "message": "one"},
                               {"key": "{{ request.operation }}", "operator": "Equals", "value": "UPDATE", "message": "two"}]}),
                Some((false, "two".to_owned())),
            ),
            (json!([{"key": "{{ request.object.spec.missing }}", "operator": "Equals", "value": "x"}]), None),
            (json!([{"key": "{{ request.object.spec.missing || '' }}", "operator": "Equals", "value": ""}]), Some((true, String::new()))),
            (json!([{"key": "{{ request.operation }}-x", "operator": "Equals", "value": "CREATE-x"}]), Some((true, String::new()))),
        ];
        for (conds, expected) in cases {
            let mut programs = Programs::default();
            programs.add_templates(&conds, false, &mut keys.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(evaluate(&conditions(&conds, &programs), &programs, &scope), expected, "{conds}");
        }
    }
}
