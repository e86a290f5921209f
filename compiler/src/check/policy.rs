//! Checks that need more than a field's own shape: rule-level rules of Kyverno's policy
//! validation (`pkg/validation/policy`), condition operators, patterns and expressions.

use super::codes;
use super::expr::{self, check_jmespath, check_templates, walk_strings};
use super::suggest::did_you_mean;
use crate::ast::kyverno::{
    Conditions, ContextEntry, ContextSource, KyvernoPolicy, MatchResources, Rule, RuleBody,
    ValidateForEach,
};
use crate::ast::{Kind, Policy, key_span};
use crate::diagnostic::Diagnostic;
use crate::pattern::{PatternMode, parse_pattern};
use crate::source::Span;
use crate::syntax::Node;

const MAX_RULE_NAME: usize = 63;

/// Condition operators and, for deprecated ones, their replacement.
pub const OPERATORS: &[(&str, Option<&str>)] = &[
    ("Equals", None),
    ("NotEquals", None),
    ("AnyIn", None),
    ("AllIn", None),
    ("AnyNotIn", None),
    ("AllNotIn", None),
    ("GreaterThan", None),
    ("GreaterThanOrEquals", None),
    ("LessThan", None),
    ("LessThanOrEquals", None),
    ("Equal", Some("Equals")),
    ("NotEqual", Some("NotEquals")),
    ("In", Some("AllIn")),
    ("NotIn", Some("AllNotIn")),
    ("DurationGreaterThan", Some("GreaterThan")),
    ("DurationGreaterThanOrEquals", Some("GreaterThanOrEquals")),
    ("DurationLessThan", Some("LessThan")),
    ("DurationLessThanOrEquals", Some("LessThanOrEquals")),
];

/// Variables Kyverno rejects in policies that run in the background, where there is no
/// admission request and so no user.
const USER_INFO_VARIABLES: &[&str] = &[
    "request.userInfo",
    "request.roles",
    "request.clusterRoles",
    "serviceAccountName",
    "serviceAccountNamespace",
];

pub fn check(policy: &Policy, root: &Node, out: &mut Vec<Diagnostic>) {
    match policy {
        Policy::Kyverno(p) => kyverno_policy(p, root, out),
        Policy::Exception(e) => {
            if let Some(m) = &e.match_ {
                match_resources(m, root.get("spec").and_then(|s| s.get("match")), out);
            }
            if let Some(c) = &e.conditions {
                conditions(c, out);
            }
        }
        Policy::Cleanup(c) => {
            if let Some(m) = &c.match_ {
                match_resources(m, root.get("spec").and_then(|s| s.get("match")), out);
            }
            if let Some(cond) = &c.conditions {
                conditions(cond, out);
            }
            context(&c.context, out);
            if let Some(schedule) = &c.schedule {
                cron(schedule.as_str(), schedule.span, out);
            }
            if let Some(spec) = root.get("spec") {
                walk_strings(spec, &|k| k == "match" || k == "exclude", &mut |n| {
                    check_templates(n, out)
                });
            }
        }
        Policy::GlobalContext(g) => {
            for p in &g.projections {
                if let Some(node) = root_str(root, p.jmes_path.as_ref().map(|s| s.span)) {
                    check_jmespath(&node, out);
                }
            }
        }
        Policy::Cel(c) => {
            if let (Kind::Cel(crate::ast::CelPolicyKind::Deleting { .. }), Some(s)) =
                (c.header.kind, &c.schedule)
            {
                cron(s.as_str(), s.span, out);
            }
        }
        Policy::Binding(_) => {}
    }
}

/// Finds the string node with this span under `root` (the AST keeps spans, checks want nodes).
fn root_str(root: &Node, span: Option<Span>) -> Option<Node> {
    let span = span?;
    let mut found = None;
    walk_strings(root, &|_| false, &mut |n| {
        if found.is_none() && n.span == span {
            found = Some(n.clone());
        }
    });
    found
}

fn kyverno_policy(p: &KyvernoPolicy, root: &Node, out: &mut Vec<Diagnostic>) {
    let spec_node = root.get("spec");
    let spec = &p.spec;
    if let (Some(a), Some(b)) = (spec.admission, spec.background)
        && !a.value
        && !b.value
    {
        out.push(
            Diagnostic::error(
                codes::NOWHERE_TO_RUN,
                b.span,
                "`admission` and `background` are both false",
            )
            .with_note("the policy would never run; set one of them to true"),
        );
    }
    if p.header.kind == Kind::Policy
        && let Some(span) = spec_node.and_then(|s| key_span(s, "validationFailureActionOverrides"))
    {
        out.push(
            Diagnostic::error(
                codes::CLUSTER_ONLY,
                span,
                "`validationFailureActionOverrides` is only allowed in a ClusterPolicy",
            )
            .with_note(
                "a namespaced Policy applies to its own namespace only; remove the overrides",
            ),
        );
    }
    // A deprecated spec field and its per-rule or nested replacement must not both be set.
    // Deprecated spec fields and the path of their replacement inside each rule.
    let deprecated_pairs: [(&str, [&str; 2]); 4] = [
        ("validationFailureAction", ["validate", "failureAction"]),
        (
            "validationFailureActionOverrides",
            ["validate", "failureActionOverrides"],
        ),
        (
            "mutateExistingOnPolicyUpdate",
            ["mutate", "mutateExistingOnPolicyUpdate"],
        ),
        ("generateExisting", ["generate", "generateExisting"]),
    ];
    let rule_nodes: &[Node] = spec_node
        .and_then(|s| s.get("rules"))
        .and_then(Node::as_seq)
        .unwrap_or(&[]);
    if let Some(spec_node) = spec_node {
        for (field, path) in deprecated_pairs {
            let Some(span) = key_span(spec_node, field) else {
                continue;
            };
            let replacement = format!("`{}`", path.join("."));
            if rule_nodes.iter().any(|r| has(r, &path)) {
                out.push(
                    Diagnostic::error(
                        codes::EXCLUSIVE,
                        span,
                        format!("`spec.{field}` is deprecated and cannot be combined with its replacement {replacement}"),
                    )
                    .with_note("remove the deprecated spec field and keep the per-rule setting"),
                );
            }
        }
        let webhook = spec_node.get("webhookConfiguration");
        for (old, new) in [
            ("failurePolicy", "failurePolicy"),
            ("webhookTimeoutSeconds", "timeoutSeconds"),
        ] {
            if let (Some(span), Some(_)) =
                (key_span(spec_node, old), webhook.and_then(|w| w.get(new)))
            {
                out.push(
                    Diagnostic::error(
                        codes::EXCLUSIVE,
                        span,
                        format!("`spec.{old}` is deprecated and cannot be combined with `webhookConfiguration.{new}`"),
                    )
                    .with_note(format!("remove `spec.{old}`")),
                );
            }
        }
    }

    let mut names: Vec<(&str, Span)> = Vec::new();
    for (rule, node) in spec.rules.iter().zip(rule_nodes) {
        if let Some(name) = &rule.name {
            if let Some((_, first)) = names.iter().find(|(n, _)| *n == name.as_str()) {
                let _ = first;
                out.push(
                    Diagnostic::error(codes::DUPLICATE_RULE, name.span, format!("duplicate rule name `{}`", name.as_str()))
                        .with_note("rule names must be unique within a policy; reports and exceptions refer to rules by name"),
                );
            } else {
                names.push((name.as_str(), name.span));
            }
            let len = name.as_str().chars().count();
            if len > MAX_RULE_NAME {
                out.push(
                    Diagnostic::error(
                        codes::RULE_NAME_TOO_LONG,
                        name.span,
                        format!("the rule name is {len} characters long; Kyverno allows at most {MAX_RULE_NAME}"),
                    )
                    .with_note("shorten the name"),
                );
            }
        }
        rule_checks(p, rule, node, out);
    }
}

/// Whether `node` has a non-null value at the path `keys`.
fn has(node: &Node, keys: &[&str]) -> bool {
    let mut cur = node;
    for k in keys {
        match cur.get(k) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    !cur.is_null()
}

fn rule_checks(p: &KyvernoPolicy, rule: &Rule, node: &Node, out: &mut Vec<Diagnostic>) {
    let head = key_span(node, "name").unwrap_or(rule.span);
    if rule.bodies.is_empty() {
        out.push(
            Diagnostic::error(
                codes::NO_RULE_TYPE,
                head,
                "the rule has no `validate`, `mutate`, `generate` or `verifyImages`",
            )
            .with_note("every rule needs exactly one of them to do anything"),
        );
    }
    if let Some(m) = &rule.match_ {
        match_resources(m, node.get("match"), out);
    }
    if let Some(e) = &rule.exclude {
        match_resources(e, node.get("exclude"), out);
    }
    if let Some(c) = &rule.preconditions {
        conditions(c, out);
    }
    context(&rule.context, out);
    let is_cel = rule
        .bodies
        .iter()
        .any(|b| matches!(b, RuleBody::Validate(v) if v.cel.is_some()));
    if !rule.cel_preconditions.is_empty()
        && !is_cel
        && let Some(span) = key_span(node, "celPreconditions")
    {
        out.push(
            Diagnostic::error(
                codes::WRONG_RULE_TYPE,
                span,
                "`celPreconditions` only work with `validate.cel` rules",
            )
            .with_note("use `preconditions` with JMESPath conditions here"),
        );
    }
    if is_cel
        && !rule.context.is_empty()
        && let Some(span) = key_span(node, "context")
    {
        out.push(
            Diagnostic::error(
                codes::WRONG_RULE_TYPE,
                span,
                "`context` cannot be used with `validate.cel`",
            )
            .with_note("CEL rules read data through CEL variables and `paramRef` instead"),
        );
    }

    for body in &rule.bodies {
        match body {
            RuleBody::Validate(v) => {
                let any = v.pattern.is_some()
                    || v.any_pattern.is_some()
                    || v.deny.is_some()
                    || !v.foreach.is_empty()
                    || v.pod_security.is_some()
                    || v.cel.is_some()
                    || v.manifests.is_some();
                if !any {
                    out.push(
                        Diagnostic::error(codes::EMPTY_VALIDATE, v.span, "the validate rule has nothing to check")
                            .with_note("add one of `pattern`, `anyPattern`, `deny`, `foreach`, `podSecurity`, `cel` or `manifests`"),
                    );
                }
                patterns(
                    v.pattern.as_ref(),
                    v.any_pattern.as_deref(),
                    PatternMode::Validate,
                    out,
                );
                if let Some(c) = v.deny.as_ref().and_then(|d| d.conditions.as_ref()) {
                    conditions(c, out);
                }
                validate_foreach(&v.foreach, out);
                if let Some(version) = v.pod_security.as_ref().and_then(|p| p.version.as_ref()) {
                    pod_security_version(version, out);
                }
            }
            RuleBody::Mutate(m) => {
                if m.mutate_existing_on_policy_update.is_some_and(|b| b.value)
                    && m.targets.is_empty()
                {
                    let span = m
                        .mutate_existing_on_policy_update
                        .map_or(m.span, |b| b.span);
                    out.push(
                        Diagnostic::error(codes::EXISTING_WITHOUT_TARGETS, span, "`mutateExistingOnPolicyUpdate` needs `targets`")
                            .with_note("mutating existing resources works on the `targets` of the rule; add them or remove this field"),
                    );
                }
                if m.patch_strategic_merge.is_none()
                    && m.patches_json6902.is_none()
                    && m.foreach.is_empty()
                {
                    out.push(
                        Diagnostic::error(
                            codes::EMPTY_MUTATE,
                            m.span,
                            "the mutate rule has nothing to apply",
                        )
                        .with_note("add `patchStrategicMerge`, `patchesJson6902` or `foreach`"),
                    );
                }
                patterns(
                    m.patch_strategic_merge.as_ref(),
                    None,
                    PatternMode::Mutate,
                    out,
                );
                for t in &m.targets {
                    context(&t.context, out);
                    if let Some(c) = &t.preconditions {
                        conditions(c, out);
                    }
                }
                mutate_foreach(&m.foreach, out);
                if let Some(patch) = node.get("mutate").and_then(|m| m.get("patchesJson6902")) {
                    json_patch_paths(patch, out);
                }
            }
            RuleBody::Generate(g) => {
                let source = g.data.is_some()
                    || g.clone.is_some()
                    || g.clone_list.is_some()
                    || !g.foreach.is_empty();
                if !source {
                    out.push(
                        Diagnostic::error(
                            codes::INCOMPLETE_GENERATE,
                            g.span,
                            "the generate rule has no `data`, `clone`, `cloneList` or `foreach`",
                        )
                        .with_note("say what to generate: inline `data`, or a resource to `clone`"),
                    );
                } else if g.clone_list.is_none()
                    && g.foreach.is_empty()
                    && (g.kind.is_none() || g.name.is_none())
                {
                    let missing = if g.kind.is_none() { "kind" } else { "name" };
                    out.push(
                        Diagnostic::error(
                            codes::INCOMPLETE_GENERATE,
                            g.span,
                            format!("the generate rule is missing `{missing}` of the resource to generate"),
                        )
                        .with_note("`apiVersion`, `kind` and `name` (and `namespace` for namespaced kinds) name the generated resource"),
                    );
                }
                for f in &g.foreach {
                    context(&f.context, out);
                    if let Some(c) = &f.preconditions {
                        conditions(c, out);
                    }
                }
            }
            RuleBody::VerifyImages(entries) => {
                let list = node
                    .get("verifyImages")
                    .and_then(Node::as_seq)
                    .unwrap_or(&[]);
                for (entry, entry_node) in entries.iter().zip(list) {
                    let action = entry
                        .failure_action
                        .as_ref()
                        .or(p.spec.validation_failure_action.as_ref())
                        .map_or("Audit", |s| s.as_str());
                    if action.eq_ignore_ascii_case("audit")
                        && entry.mutate_digest.is_none_or(|b| b.value)
                    {
                        let span = entry.mutate_digest.map_or(entry.span, |b| b.span);
                        let span = if entry.mutate_digest.is_some() {
                            span
                        } else {
                            key_head(entry_node)
                        };
                        out.push(
                            // A warning, not an error: the policy is well formed and both
                            // Palisade and Kyverno's CLI run it (pinning digests), but Kyverno
                            // 1.11+'s policy webhook refuses to install it in a cluster.
                            Diagnostic::warning(
                                codes::MUTATE_DIGEST_AUDIT,
                                span,
                                "`mutateDigest` is true under the Audit failure action; Kyverno's webhook refuses to install this policy",
                            )
                            .with_note("set `mutateDigest: false`, or `failureAction: Enforce` (mutateDigest defaults to true, the action to Audit); Kyverno says \"mutateDigest must be set to false for 'Audit' failure action\""),
                        );
                    }
                    for img in entry_node
                        .get("imageReferences")
                        .and_then(Node::as_seq)
                        .unwrap_or(&[])
                    {
                        no_variables(img, "`imageReferences`", out);
                    }
                    for img in entry_node
                        .get("skipImageReferences")
                        .and_then(Node::as_seq)
                        .unwrap_or(&[])
                    {
                        no_variables(img, "`skipImageReferences`", out);
                    }
                }
            }
        }
    }

    // Templates and JMESPath everywhere in the rule except match/exclude (reported above) and
    // CEL, which has no templates.
    let skip = |k: &str| matches!(k, "match" | "exclude" | "cel" | "celPreconditions");
    let mut pure_jmespath: Vec<Node> = Vec::new();
    collect_jmespath_fields(node, &mut pure_jmespath);
    walk_strings(node, &skip, &mut |n| {
        if !pure_jmespath.iter().any(|j| j.span == n.span) {
            check_templates(n, out);
        }
    });
    for n in &pure_jmespath {
        check_jmespath(n, out);
    }
    if p.spec.background() {
        let background = p.spec.background.map(|b| b.span);
        // Kyverno skips the variable check when any rule mutates existing resources (those run
        // from update requests that carry the user), but never the match/exclude check.
        let mutate_existing = p.spec.rules.iter().any(|r| {
            r.bodies
                .iter()
                .any(|b| matches!(b, RuleBody::Mutate(m) if !m.targets.is_empty()))
        });
        if !mutate_existing {
            user_info_variables(node, &skip, background, out);
        }
        for block in ["match", "exclude"] {
            if let Some(m) = node.get(block) {
                user_info_filters(m, block, background, out);
            }
        }
    }
}

/// Roles, cluster roles and subjects in match/exclude need an admission request, which
/// background scans do not have.
fn user_info_filters(
    block: &Node,
    name: &str,
    background: Option<Span>,
    out: &mut Vec<Diagnostic>,
) {
    let filters = ["any", "all"]
        .into_iter()
        .filter_map(|k| block.get(k))
        .flat_map(|l| l.as_seq().unwrap_or(&[]))
        .chain(std::iter::once(block));
    for filter in filters {
        for field in ["roles", "clusterRoles", "subjects"] {
            let Some((key, value)) = filter.entry(field) else {
                continue;
            };
            if value.as_seq().is_none_or(<[Node]>::is_empty) {
                continue;
            }
            let mut d = Diagnostic::error(
                codes::USER_INFO_IN_BACKGROUND,
                key.span,
                format!("`{field}` in `{name}` cannot be evaluated when the policy runs in the background"),
            )
            .with_note("background scans have no admission request and so no user; set `spec.background: false`");
            if let Some(span) = background {
                d = d.with_fix("set `background: false`", span, Some("false".to_owned()));
            }
            out.push(d);
        }
    }
}

fn key_head(node: &Node) -> Span {
    node.as_map()
        .and_then(<[_]>::first)
        .map_or(node.span, |(k, _)| k.span)
}

/// Strings that are JMESPath as a whole: `foreach[].list` and every `jmesPath` field.
fn collect_jmespath_fields(node: &Node, out: &mut Vec<Node>) {
    match &node.value {
        crate::syntax::Value::Map(entries) => {
            for (k, v) in entries {
                match k.as_str() {
                    Some("jmesPath") if v.as_str().is_some() => out.push(v.clone()),
                    Some("foreach") => {
                        for item in v.as_seq().unwrap_or(&[]) {
                            if let Some(list) = item.get("list").filter(|l| l.as_str().is_some()) {
                                out.push(list.clone());
                            }
                        }
                        collect_jmespath_fields(v, out);
                    }
                    Some("cel") => {}
                    _ => collect_jmespath_fields(v, out),
                }
            }
        }
        crate::syntax::Value::Seq(items) => {
            for item in items {
                collect_jmespath_fields(item, out);
            }
        }
        _ => {}
    }
}

fn user_info_variables(
    node: &Node,
    skip: &dyn Fn(&str) -> bool,
    background: Option<Span>,
    out: &mut Vec<Diagnostic>,
) {
    walk_strings(node, skip, &mut |n| {
        for var in expr::templates(n) {
            let Some(bad) = USER_INFO_VARIABLES.iter().find(|v| mentions(&var.text, v)) else {
                continue;
            };
            let mut d = Diagnostic::error(
                codes::USER_INFO_IN_BACKGROUND,
                var.span,
                format!("`{bad}` is not available when the policy runs in the background"),
            )
            .with_note("background scans have no admission request and so no user; set `spec.background: false` or drop the variable");
            if let Some(span) = background {
                d = d.with_fix("set `background: false`", span, Some("false".to_owned()));
            }
            out.push(d);
        }
    });
}

/// Whether `expr` uses the variable `var` as a path root (not as part of a longer name).
fn mentions(expr: &str, var: &str) -> bool {
    let mut at = 0;
    while let Some(i) = expr.get(at..).and_then(|r| r.find(var)) {
        let start = at + i;
        let end = start + var.len();
        let before = start
            .checked_sub(1)
            .and_then(|b| expr.as_bytes().get(b))
            .copied();
        let after = expr.as_bytes().get(end).copied();
        let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if !before.is_some_and(|c| ident(c) || c == b'.') && !after.is_some_and(ident) {
            return true;
        }
        at = end;
    }
    false
}

fn no_variables(node: &Node, place: &str, out: &mut Vec<Diagnostic>) {
    for var in expr::templates(node) {
        out.push(
            Diagnostic::error(codes::VARIABLE_NOT_ALLOWED, var.span, format!("variables are not allowed in {place}"))
                .with_note("Kyverno does not substitute variables here, so the text is used literally; write the value out"),
        );
    }
}

fn match_resources(m: &MatchResources, node: Option<&Node>, out: &mut Vec<Diagnostic>) {
    // Emptiness is judged on the YAML, not the typed filters, so that a field of the wrong type
    // (reported on its own) does not also make the block look empty.
    let set = |n: &Node| {
        n.as_map()
            .is_some_and(|entries| entries.iter().any(|(_, v)| !v.is_null()))
    };
    let filter_set = |f: &Node| {
        f.as_map().is_some_and(|entries| {
            entries.iter().any(|(k, v)| {
                if k.as_str() == Some("resources") {
                    set(v)
                } else {
                    !v.is_null()
                }
            })
        })
    };
    let filters: Vec<&Node> = match node {
        Some(n) => {
            let lists = ["any", "all"]
                .into_iter()
                .filter_map(|k| n.get(k))
                .flat_map(|l| l.as_seq().unwrap_or(&[]));
            let legacy = m.legacy.is_some().then_some(n);
            lists.chain(legacy).collect()
        }
        None => Vec::new(),
    };
    if !filters.iter().any(|f| filter_set(f)) {
        let span = node.map_or(m.span, |n| {
            n.as_map()
                .and_then(<[_]>::first)
                .map_or(n.span, |(k, _)| k.span)
        });
        out.push(
            Diagnostic::error(codes::EMPTY_MATCH, span, "this match or exclude block selects nothing")
                .with_note("Kyverno rejects an empty filter (`match cannot be empty`); add `any` or `all` with `resources.kinds`"),
        );
    }
    if let Some(node) = node {
        walk_strings(node, &|_| false, &mut |n| {
            no_variables(n, "`match` and `exclude`", out)
        });
    }
}

fn conditions(c: &Conditions, out: &mut Vec<Diagnostic>) {
    for cond in c.iter() {
        let Some(op) = &cond.operator else { continue };
        let text = op.as_str();
        match OPERATORS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
        {
            Some((_, Some(replacement))) => {
                out.push(
                    Diagnostic::warning(
                        codes::DEPRECATED_OPERATOR,
                        op.span,
                        format!("the operator `{text}` is deprecated"),
                    )
                    .with_note(match *replacement {
                        "AllIn" | "AllNotIn" => format!(
                            "use `{replacement}` (every element of the key) or `{}` (any element)",
                            replacement.replace("All", "Any")
                        ),
                        _ => format!("use `{replacement}`, which covers the same comparisons"),
                    })
                    .with_fix(
                        format!("replace with `{replacement}`"),
                        op.span,
                        Some((*replacement).to_owned()),
                    ),
                );
            }
            Some(_) => {}
            None => {
                let mut d = Diagnostic::error(
                    codes::UNKNOWN_OPERATOR,
                    op.span,
                    format!("unknown operator `{text}`"),
                );
                let names = OPERATORS
                    .iter()
                    .filter(|(_, r)| r.is_none())
                    .map(|(n, _)| *n);
                match did_you_mean(text, names) {
                    Some(best) => {
                        d = d.with_fix(
                            format!("did you mean `{best}`?"),
                            op.span,
                            Some(best.to_owned()),
                        )
                    }
                    None => {
                        let all: Vec<&str> = OPERATORS
                            .iter()
                            .filter(|(_, r)| r.is_none())
                            .map(|(n, _)| *n)
                            .collect();
                        d = d.with_note(format!("the operators are {}", super::schema::list(&all)));
                    }
                }
                out.push(d);
            }
        }
    }
}

fn context(entries: &[ContextEntry], out: &mut Vec<Diagnostic>) {
    for entry in entries {
        if entry.source == ContextSource::Missing {
            out.push(
                Diagnostic::error(
                    codes::MISSING_FIELD,
                    entry.name.as_ref().map_or(entry.span, |n| n.span),
                    "the context entry has no source",
                )
                .with_note("add one of `configMap`, `apiCall`, `imageRegistry`, `variable` or `globalReference`"),
            );
        }
        if let ContextSource::Variable {
            value: None,
            jmes_path: None,
            ..
        } = &entry.source
        {
            out.push(
                Diagnostic::error(
                    codes::MISSING_FIELD,
                    entry.name.as_ref().map_or(entry.span, |n| n.span),
                    "the variable has neither `value` nor `jmesPath`",
                )
                .with_note("give the variable a `value`, or a `jmesPath` to compute it"),
            );
        }
        if let ContextSource::Variable {
            default: Some(d),
            jmes_path: None,
            ..
        } = &entry.source
        {
            out.push(
                Diagnostic::error(codes::BAD_VALUE, d.span, "`default` only applies with `jmesPath`")
                    .with_note("the default is used when the `jmesPath` gives nothing; add a `jmesPath` or remove `default`"),
            );
        }
    }
}

fn patterns(
    pattern: Option<&Node>,
    any: Option<&[Node]>,
    mode: PatternMode,
    out: &mut Vec<Diagnostic>,
) {
    for node in pattern.into_iter().chain(any.unwrap_or(&[])) {
        let (_, diags) = parse_pattern(node, mode);
        out.extend(diags);
    }
}

fn validate_foreach(list: &[ValidateForEach], out: &mut Vec<Diagnostic>) {
    for f in list {
        patterns(
            f.pattern.as_ref(),
            f.any_pattern.as_deref(),
            PatternMode::Validate,
            out,
        );
        if let Some(c) = &f.preconditions {
            conditions(c, out);
        }
        if let Some(c) = f.deny.as_ref().and_then(|d| d.conditions.as_ref()) {
            conditions(c, out);
        }
        context(&f.context, out);
        validate_foreach(&f.foreach, out);
    }
}

fn mutate_foreach(list: &[crate::ast::kyverno::MutateForEach], out: &mut Vec<Diagnostic>) {
    for f in list {
        patterns(
            f.patch_strategic_merge.as_ref(),
            None,
            PatternMode::Mutate,
            out,
        );
        if let Some(c) = &f.preconditions {
            conditions(c, out);
        }
        context(&f.context, out);
        mutate_foreach(&f.foreach, out);
    }
}

/// Variables in a JSON patch's `path`s are not substituted. The patch is a YAML or JSON string;
/// its positions are only exact when the string maps one-to-one onto the file.
fn json_patch_paths(patch: &Node, out: &mut Vec<Diagnostic>) {
    let Some(text) = patch.as_str() else { return };
    if !text.contains("{{") {
        return;
    }
    let (docs, _) = crate::syntax::parse(patch.span.file, text);
    for doc in &docs {
        for op in doc.root.as_seq().unwrap_or(&[]) {
            let Some(path) = op.get("path").and_then(Node::as_str) else {
                continue;
            };
            if path.contains("{{") {
                let rel = op.get("path").map(|p| p.span.range()).unwrap_or(0..0);
                let span = patch.str_span(rel);
                out.push(
                    Diagnostic::error(codes::VARIABLE_NOT_ALLOWED, span, "variables are not allowed in a JSON patch `path`")
                        .with_note("Kyverno does not substitute variables in patch paths; use `foreach` with `{{elementIndex}}` in the value, or a fixed path"),
                );
            }
        }
    }
}

/// A cron schedule has five fields (or is a `@` macro).
fn cron(text: &str, span: Span, out: &mut Vec<Diagnostic>) {
    let fields = text.split_whitespace().count();
    if !text.starts_with('@') && fields != 5 {
        out.push(
            Diagnostic::error(
                codes::BAD_VALUE,
                span,
                format!("`{text}` is not a cron schedule: it has {fields} fields, not 5"),
            )
            .with_note(
                "write minute, hour, day of month, month and day of week, e.g. `*/5 * * * *`",
            ),
        );
    }
}

/// Pod Security Standards versions Kyverno knows: `latest` or `v1.19` up to `v1.32`.
fn pod_security_version(version: &crate::ast::Str, out: &mut Vec<Diagnostic>) {
    let text = version.as_str();
    let minor = text.strip_prefix("v1.").and_then(|m| m.parse::<u32>().ok());
    if text == "latest" || minor.is_some_and(|m| (19..=32).contains(&m)) {
        return;
    }
    out.push(
        Diagnostic::error(
            codes::BAD_ENUM,
            version.span,
            format!("`{text}` is not a Pod Security Standards version"),
        )
        .with_note("use `latest` or a Kubernetes minor version from `v1.19` to `v1.32`"),
    );
}
