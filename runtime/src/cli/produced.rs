//! What a test's mutate and generate rules produced (patched resources, generated resources,
//! patched targets), and the checks of `patchedResources` and `generatedResource` against them.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::runner::{Outcome, expand_list, load_path};
use super::testfile::ExpectedResult;
use crate::engine::{self, RuleResult};
use crate::mutate::diff;

#[derive(Default)]
pub struct Produced {
    /// `(resource index, policy)` -> the resource after the policy's mutate rules.
    pub patched: HashMap<(usize, String), Value>,
    /// `(trigger index, policy, rule)` -> the resources the rule generated.
    pub generated: HashMap<(usize, String, String), Vec<Value>>,
    /// `(policy, rule)` -> the result and patched target of each mutate-existing target.
    pub targets: HashMap<(String, String), Vec<(RuleResult, Value)>>,
}

fn policy_name(exp: &ExpectedResult) -> String {
    exp.policy.rsplit('/').next().unwrap_or_default().to_owned()
}

fn split_name(res_name: &str) -> (Option<&str>, &str) {
    match res_name.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, res_name),
    }
}

fn named(resource: &Value, res_name: &str, kind: &str) -> bool {
    let (want_ns, want_name) = split_name(res_name);
    let name = resource.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let ns = engine::namespace_of(resource).unwrap_or_default();
    let k = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
    name == want_name && want_ns.is_none_or(|w| w == ns || (ns.is_empty() && w == "default")) && (kind.is_empty() || kind == k)
}

impl Produced {
    fn target(&self, exp: &ExpectedResult, res_name: &str) -> Option<&(RuleResult, Value)> {
        let entries = self.targets.get(&(policy_name(exp), exp.rule.clone().unwrap_or_default()))?;
        entries.iter().find(|(_, t)| named(t, res_name, &exp.kind))
    }

    /// The outcome of an expectation about a mutate-existing target, when the rule has
    /// targets; `None` leaves the expectation to the trigger results.
    pub fn target_outcome(&self, exp: &ExpectedResult, res_name: &str) -> Option<Outcome> {
        let (result, _) = self.target(exp, res_name)?;
        let actual = result.status.as_str().to_owned();
        let ok = actual.eq_ignore_ascii_case(&exp.result);
        Some(Outcome {
            policy: exp.policy.clone(),
            rule: exp.rule.clone().unwrap_or_default(),
            resource: res_name.to_owned(),
            kind: exp.kind.clone(),
            expected: exp.result.clone(),
            actual,
            ok,
            reason: if ok { String::new() } else { result.message.clone() },
            category: "mutate".into(),
            unchecked: false,
        })
    }

    /// The resource the policy left for this expectation: a patched target, or the trigger.
    fn patched_for(&self, exp: &ExpectedResult, res_name: &str, resources: &[Value]) -> Option<&Value> {
        if let Some((_, t)) = self.target(exp, res_name) {
            return Some(t);
        }
        let policy = policy_name(exp);
        resources
            .iter()
            .enumerate()
            .filter(|(_, r)| named(r, res_name, &exp.kind))
            .find_map(|(ri, _)| self.patched.get(&(ri, policy.clone())))
    }

    /// Checks `patchedResources` and `generatedResource`, as `kyverno test` does before it
    /// compares the result: a resource that differs fails the expectation, with a diff.
    pub fn check(&self, outcome: &mut Outcome, exp: &ExpectedResult, res_name: &str, dir: &Path, resources: &[Value]) {
        // Policies Palisade does not evaluate have no result to check resources against.
        if outcome.actual.is_empty() {
            return;
        }
        if let Some(file) = &exp.patched_resources {
            let Some(actual) = self.patched_for(exp, res_name, resources) else { return };
            match compare_with_file(actual, &dir.join(file), "Patched") {
                Ok(Compared::Same) => {}
                // Kyverno's CLI looks the patched resource up in the file by apiVersion, kind,
                // namespace and name; when the file does not hold it, the CLI drops the result
                // row: it is neither passed nor failed, whatever the expected result says.
                Ok(Compared::NotInFile(why)) => {
                    outcome.ok = true;
                    outcome.unchecked = true;
                    outcome.reason = format!("not checked: {why}; Kyverno's CLI leaves such a result out of its counts");
                    return;
                }
                Err(reason) => {
                    outcome.ok = false;
                    outcome.reason = reason;
                    return;
                }
            }
        }
        if let Some(file) = &exp.generated_resource {
            let policy = policy_name(exp);
            let rule = exp.rule.clone().unwrap_or_default();
            let generated: Vec<&Value> = resources
                .iter()
                .enumerate()
                .filter(|(_, r)| named(r, res_name, &exp.kind))
                .filter_map(|(ri, _)| self.generated.get(&(ri, policy.clone(), rule.clone())))
                .flatten()
                .collect();
            let expected = match load_expected(&dir.join(file)) {
                Ok(e) => e,
                Err(e) => {
                    outcome.ok = false;
                    outcome.reason = e;
                    return;
                }
            };
            let Some(want) = expected.first() else {
                outcome.ok = false;
                outcome.reason = format!("{}: no resource in the file", file);
                return;
            };
            let found = generated.iter().find(|g| diff::identity(g) == diff::identity(want)).or(generated.first());
            match found {
                None => {
                    outcome.ok = false;
                    outcome.reason = "no resource was generated for this trigger".into();
                }
                Some(g) if !diff::same_resource(g, want) => {
                    outcome.ok = false;
                    outcome.reason = format!(
                        "Generated resource didn't match the generated resource in the test result\n{}",
                        diff::render(want, g)
                    );
                }
                Some(_) => {}
            }
        }
    }
}

fn load_expected(path: &Path) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for d in load_path(path)? {
        expand_list(d, &mut docs);
    }
    Ok(docs)
}

/// How a produced resource compares with the expected file.
enum Compared {
    Same,
    /// The file holds no resource with the produced resource's identity.
    NotInFile(String),
}

/// Compares `actual` with the document of `path` that has its identity (apiVersion, kind,
/// namespace, name), as Kyverno's CLI finds it.
fn compare_with_file(actual: &Value, path: &Path, what: &str) -> Result<Compared, String> {
    let docs = load_expected(path)?;
    let want = diff::identity(actual);
    let Some(expected) = docs.iter().find(|d| diff::identity(d) == want) else {
        return Ok(Compared::NotInFile(format!(
            "{} holds no {} {} {}/{}",
            path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            want.0,
            want.1,
            want.2,
            want.3
        )));
    };
    if diff::same_resource(actual, expected) {
        return Ok(Compared::Same);
    }
    Err(format!(
        "{what} resource didn't match the {} resource in the test result\n{}",
        what.to_lowercase(),
        diff::render(expected, actual)
    ))
}
