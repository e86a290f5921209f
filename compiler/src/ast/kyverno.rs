//! `kyverno.io` kinds: ClusterPolicy and Policy (v1, v2beta1), PolicyException, CleanupPolicy,
//! ClusterCleanupPolicy and GlobalContextEntry (v2).

use super::{Header, Spanned, Str, bool_at, int_at, list_at, node_at, str_at, strs_at};
use crate::source::Span;
use crate::syntax::{Node, Value};

/// A `ClusterPolicy` or a namespaced `Policy` (`header.kind` tells which).
#[derive(Clone, Debug, PartialEq)]
pub struct KyvernoPolicy {
    pub header: Header,
    pub spec: Spec,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Spec {
    pub span: Span,
    pub rules: Vec<Rule>,
    pub apply_rules: Option<Str>,
    pub admission: Option<Spanned<bool>>,
    pub background: Option<Spanned<bool>>,
    pub emit_warning: Option<Spanned<bool>>,
    pub use_server_side_apply: Option<Spanned<bool>>,
    pub webhook_configuration: Option<WebhookConfiguration>,
    /// Deprecated in favour of each validate rule's `failureAction`.
    pub validation_failure_action: Option<Str>,
    /// Deprecated in favour of each validate rule's `failureActionOverrides`.
    pub validation_failure_action_overrides: Vec<FailureActionOverride>,
    /// Deprecated in favour of `webhookConfiguration.failurePolicy`.
    pub failure_policy: Option<Str>,
    /// Deprecated in favour of `webhookConfiguration.timeoutSeconds`.
    pub webhook_timeout_seconds: Option<Spanned<i64>>,
    pub mutate_existing_on_policy_update: Option<Spanned<bool>>,
    pub generate_existing: Option<Spanned<bool>>,
    pub schema_validation: Option<Spanned<bool>>,
}

impl Spec {
    /// `background` as Kyverno reads it: true unless set to false.
    pub fn background(&self) -> bool {
        self.background.is_none_or(|b| b.value)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookConfiguration {
    pub span: Span,
    pub failure_policy: Option<Str>,
    pub timeout_seconds: Option<Spanned<i64>>,
    pub match_conditions: Vec<NamedExpression>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FailureActionOverride {
    pub span: Span,
    pub action: Option<Str>,
    pub namespaces: Vec<Str>,
    pub namespace_selector: Option<Node>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub span: Span,
    pub name: Option<Str>,
    pub context: Vec<ContextEntry>,
    pub match_: Option<MatchResources>,
    pub exclude: Option<MatchResources>,
    pub preconditions: Option<Conditions>,
    pub cel_preconditions: Vec<NamedExpression>,
    pub image_extractors: Option<Node>,
    pub skip_background_requests: Option<Spanned<bool>>,
    pub report_properties: Option<Node>,
    /// The rule's bodies. Kyverno requires exactly one; the checker reports none or several.
    pub bodies: Vec<RuleBody>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RuleBody {
    Validate(Box<Validate>),
    Mutate(Box<Mutate>),
    Generate(Box<Generate>),
    VerifyImages(Vec<ImageVerification>),
}

/// `match` or `exclude`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchResources {
    pub span: Span,
    pub any: Option<Vec<ResourceFilter>>,
    pub all: Option<Vec<ResourceFilter>>,
    /// The deprecated form with `resources`/`subjects`/`roles`/`clusterRoles` directly inside.
    pub legacy: Option<ResourceFilter>,
}

impl MatchResources {
    /// Every filter, whichever form it was written in.
    pub fn filters(&self) -> impl Iterator<Item = &ResourceFilter> {
        self.any
            .iter()
            .flatten()
            .chain(self.all.iter().flatten())
            .chain(self.legacy.iter())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceFilter {
    pub span: Span,
    pub resources: Option<ResourceDescription>,
    pub subjects: Vec<Subject>,
    pub roles: Vec<Str>,
    pub cluster_roles: Vec<Str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceDescription {
    pub span: Span,
    pub kinds: Vec<Str>,
    /// Deprecated in favour of `names`.
    pub name: Option<Str>,
    pub names: Vec<Str>,
    pub namespaces: Vec<Str>,
    pub annotations: Option<Node>,
    pub selector: Option<Node>,
    pub namespace_selector: Option<Node>,
    pub operations: Vec<Str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Subject {
    pub span: Span,
    pub kind: Option<Str>,
    pub name: Option<Str>,
    pub namespace: Option<Str>,
}

/// Preconditions, deny conditions and exception conditions.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditions {
    pub span: Span,
    pub any: Option<Vec<Condition>>,
    pub all: Option<Vec<Condition>>,
    /// The legacy form: a bare list, all of which must hold.
    pub legacy: Option<Vec<Condition>>,
}

impl Conditions {
    pub fn iter(&self) -> impl Iterator<Item = &Condition> {
        self.any
            .iter()
            .flatten()
            .chain(self.all.iter().flatten())
            .chain(self.legacy.iter().flatten())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub span: Span,
    pub key: Option<Node>,
    pub operator: Option<Str>,
    pub value: Option<Node>,
    pub message: Option<Str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContextEntry {
    pub span: Span,
    pub name: Option<Str>,
    pub source: ContextSource,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ContextSource {
    ConfigMap {
        name: Option<Str>,
        namespace: Option<Str>,
    },
    ApiCall {
        url_path: Option<Str>,
        service_url: Option<Str>,
        method: Option<Str>,
        data: Option<Node>,
        jmes_path: Option<Str>,
        default: Option<Node>,
    },
    ImageRegistry {
        reference: Option<Str>,
        jmes_path: Option<Str>,
        credentials: Option<Node>,
    },
    Variable {
        value: Option<Node>,
        jmes_path: Option<Str>,
        default: Option<Node>,
    },
    GlobalReference {
        name: Option<Str>,
        jmes_path: Option<Str>,
    },
    /// None of the sources (or an unknown one); the checker reports it.
    Missing,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NamedExpression {
    pub span: Span,
    pub name: Option<Str>,
    pub expression: Option<Str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Validate {
    pub span: Span,
    pub message: Option<Str>,
    pub failure_action: Option<Str>,
    pub failure_action_overrides: Vec<FailureActionOverride>,
    pub allow_existing_violations: Option<Spanned<bool>>,
    pub pattern: Option<Node>,
    pub any_pattern: Option<Vec<Node>>,
    pub deny: Option<Deny>,
    pub foreach: Vec<ValidateForEach>,
    pub pod_security: Option<PodSecurity>,
    pub cel: Option<Cel>,
    pub manifests: Option<Node>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deny {
    pub span: Span,
    pub conditions: Option<Conditions>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ValidateForEach {
    pub span: Span,
    pub list: Option<Str>,
    pub element_scope: Option<Spanned<bool>>,
    pub context: Vec<ContextEntry>,
    pub preconditions: Option<Conditions>,
    pub pattern: Option<Node>,
    pub any_pattern: Option<Vec<Node>>,
    pub deny: Option<Deny>,
    pub foreach: Vec<ValidateForEach>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PodSecurity {
    pub span: Span,
    pub level: Option<Str>,
    pub version: Option<Str>,
    pub exclude: Vec<PodSecurityExclude>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PodSecurityExclude {
    pub span: Span,
    pub control_name: Option<Str>,
    pub images: Vec<Str>,
    pub restricted_field: Option<Str>,
    pub values: Vec<Str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cel {
    pub span: Span,
    pub expressions: Vec<CelValidation>,
    pub param_kind: Option<Node>,
    pub param_ref: Option<Node>,
    pub variables: Vec<NamedExpression>,
    pub audit_annotations: Vec<AuditAnnotation>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CelValidation {
    pub span: Span,
    pub expression: Option<Str>,
    pub message: Option<Str>,
    pub message_expression: Option<Str>,
    pub reason: Option<Str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditAnnotation {
    pub span: Span,
    pub key: Option<Str>,
    pub value_expression: Option<Str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Mutate {
    pub span: Span,
    pub patch_strategic_merge: Option<Node>,
    pub patches_json6902: Option<Str>,
    pub foreach: Vec<MutateForEach>,
    pub targets: Vec<Target>,
    pub mutate_existing_on_policy_update: Option<Spanned<bool>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MutateForEach {
    pub span: Span,
    pub list: Option<Str>,
    pub order: Option<Str>,
    pub context: Vec<ContextEntry>,
    pub preconditions: Option<Conditions>,
    pub patch_strategic_merge: Option<Node>,
    pub patches_json6902: Option<Str>,
    pub foreach: Vec<MutateForEach>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub span: Span,
    pub api_version: Option<Str>,
    pub kind: Option<Str>,
    pub name: Option<Str>,
    pub namespace: Option<Str>,
    pub uid: Option<Str>,
    pub selector: Option<Node>,
    pub context: Vec<ContextEntry>,
    pub preconditions: Option<Conditions>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Generate {
    pub span: Span,
    pub api_version: Option<Str>,
    pub kind: Option<Str>,
    pub name: Option<Str>,
    pub namespace: Option<Str>,
    pub synchronize: Option<Spanned<bool>>,
    pub orphan_downstream_on_policy_delete: Option<Spanned<bool>>,
    pub generate_existing: Option<Spanned<bool>>,
    pub data: Option<Node>,
    pub clone: Option<Node>,
    pub clone_list: Option<Node>,
    pub foreach: Vec<GenerateForEach>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GenerateForEach {
    pub span: Span,
    pub list: Option<Str>,
    pub context: Vec<ContextEntry>,
    pub preconditions: Option<Conditions>,
    pub api_version: Option<Str>,
    pub kind: Option<Str>,
    pub name: Option<Str>,
    pub namespace: Option<Str>,
    pub data: Option<Node>,
    pub clone: Option<Node>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ImageVerification {
    pub span: Span,
    pub type_: Option<Str>,
    pub image_references: Vec<Str>,
    pub skip_image_references: Vec<Str>,
    pub attestors: Vec<AttestorSet>,
    pub attestations: Vec<Node>,
    pub failure_action: Option<Str>,
    pub mutate_digest: Option<Spanned<bool>>,
    pub verify_digest: Option<Spanned<bool>>,
    pub required: Option<Spanned<bool>>,
    pub use_cache: Option<Spanned<bool>>,
    pub image_registry_credentials: Option<Node>,
    pub repository: Option<Str>,
    pub validate: Option<Node>,
    /// Deprecated single-image form, folded into `imageReferences` by Kyverno.
    pub image: Option<Str>,
    /// Deprecated key and keyless fields, folded into an attestor by Kyverno.
    pub key: Option<Str>,
    pub issuer: Option<Str>,
    pub subject: Option<Str>,
    pub roots: Option<Str>,
    pub annotations: Option<Node>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AttestorSet {
    pub span: Span,
    pub count: Option<Spanned<i64>>,
    pub entries: Vec<Attestor>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attestor {
    pub span: Span,
    pub keys: Option<Node>,
    pub certificates: Option<Node>,
    pub keyless: Option<Node>,
    /// A nested attestor set.
    pub attestor: Option<Node>,
    pub annotations: Option<Node>,
    pub repository: Option<Str>,
}

/// `kyverno.io/v2` PolicyException.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyException {
    pub header: Header,
    pub background: Option<Spanned<bool>>,
    pub match_: Option<MatchResources>,
    pub conditions: Option<Conditions>,
    pub exceptions: Vec<Exception>,
    pub pod_security: Vec<PodSecurityExclude>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Exception {
    pub span: Span,
    pub policy_name: Option<Str>,
    pub rule_names: Vec<Str>,
}

/// `kyverno.io/v2` CleanupPolicy and ClusterCleanupPolicy.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanupPolicy {
    pub header: Header,
    pub match_: Option<MatchResources>,
    pub exclude: Option<MatchResources>,
    pub context: Vec<ContextEntry>,
    pub conditions: Option<Conditions>,
    pub schedule: Option<Str>,
    pub deletion_propagation_policy: Option<Str>,
}

/// `kyverno.io/v2` GlobalContextEntry.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalContextEntry {
    pub header: Header,
    pub kubernetes_resource: Option<Node>,
    pub api_call: Option<Node>,
    pub projections: Vec<Projection>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub span: Span,
    pub name: Option<Str>,
    pub jmes_path: Option<Str>,
}

// ---------------------------------------------------------------------------------------------
// Builders.

pub(super) fn build_policy(header: Header, spec: Option<&Node>) -> KyvernoPolicy {
    let webhook = spec
        .and_then(|s| s.get("webhookConfiguration"))
        .filter(|n| n.as_map().is_some());
    let spec = Spec {
        span: spec.map_or(header.span, |s| s.span),
        rules: list_at(spec, "rules").iter().map(rule).collect(),
        apply_rules: str_at(spec, "applyRules"),
        admission: bool_at(spec, "admission"),
        background: bool_at(spec, "background"),
        emit_warning: bool_at(spec, "emitWarning"),
        use_server_side_apply: bool_at(spec, "useServerSideApply"),
        webhook_configuration: webhook.map(|w| WebhookConfiguration {
            span: w.span,
            failure_policy: str_at(Some(w), "failurePolicy"),
            timeout_seconds: int_at(Some(w), "timeoutSeconds"),
            match_conditions: list_at(Some(w), "matchConditions")
                .iter()
                .map(named_expression)
                .collect(),
        }),
        validation_failure_action: str_at(spec, "validationFailureAction"),
        validation_failure_action_overrides: list_at(spec, "validationFailureActionOverrides")
            .iter()
            .map(failure_action_override)
            .collect(),
        failure_policy: str_at(spec, "failurePolicy"),
        webhook_timeout_seconds: int_at(spec, "webhookTimeoutSeconds"),
        mutate_existing_on_policy_update: bool_at(spec, "mutateExistingOnPolicyUpdate"),
        generate_existing: bool_at(spec, "generateExisting"),
        schema_validation: bool_at(spec, "schemaValidation"),
    };
    KyvernoPolicy { header, spec }
}

fn rule(node: &Node) -> Rule {
    let n = Some(node);
    let mut bodies = Vec::new();
    for (key, _) in node.as_map().unwrap_or(&[]) {
        let Some(k) = key.as_str() else { continue };
        let Some(v) = node.get(k).filter(|v| !v.is_null()) else {
            continue;
        };
        match k {
            "validate" => bodies.push(RuleBody::Validate(Box::new(validate(v)))),
            "mutate" => bodies.push(RuleBody::Mutate(Box::new(mutate(v)))),
            "generate" => bodies.push(RuleBody::Generate(Box::new(generate(v)))),
            "verifyImages" => bodies.push(RuleBody::VerifyImages(
                v.as_seq()
                    .unwrap_or(&[])
                    .iter()
                    .map(image_verification)
                    .collect(),
            )),
            _ => {}
        }
    }
    Rule {
        span: node.span,
        name: str_at(n, "name"),
        context: context(n),
        match_: node.get("match").map(match_resources),
        exclude: node.get("exclude").map(match_resources),
        preconditions: node.get("preconditions").and_then(conditions),
        cel_preconditions: list_at(n, "celPreconditions")
            .iter()
            .map(named_expression)
            .collect(),
        image_extractors: node_at(n, "imageExtractors"),
        skip_background_requests: bool_at(n, "skipBackgroundRequests"),
        report_properties: node_at(n, "reportProperties"),
        bodies,
    }
}

fn failure_action_override(node: &Node) -> FailureActionOverride {
    let n = Some(node);
    FailureActionOverride {
        span: node.span,
        action: str_at(n, "action"),
        namespaces: strs_at(n, "namespaces"),
        namespace_selector: node_at(n, "namespaceSelector"),
    }
}

pub(super) fn named_expression(node: &Node) -> NamedExpression {
    NamedExpression {
        span: node.span,
        name: str_at(Some(node), "name"),
        expression: str_at(Some(node), "expression"),
    }
}

pub(super) fn match_resources(node: &Node) -> MatchResources {
    let filters = |key| {
        node.get(key)
            .and_then(Node::as_seq)
            .map(|items| items.iter().map(resource_filter).collect())
    };
    let has_legacy = ["resources", "subjects", "roles", "clusterRoles"]
        .iter()
        .any(|k| node.get(k).is_some());
    MatchResources {
        span: node.span,
        any: filters("any"),
        all: filters("all"),
        legacy: has_legacy.then(|| resource_filter(node)),
    }
}

fn resource_filter(node: &Node) -> ResourceFilter {
    let n = Some(node);
    ResourceFilter {
        span: node.span,
        resources: node
            .get("resources")
            .filter(|r| r.as_map().is_some())
            .map(|r| {
                let r1 = Some(r);
                ResourceDescription {
                    span: r.span,
                    kinds: strs_at(r1, "kinds"),
                    name: str_at(r1, "name"),
                    names: strs_at(r1, "names"),
                    namespaces: strs_at(r1, "namespaces"),
                    annotations: node_at(r1, "annotations"),
                    selector: node_at(r1, "selector"),
                    namespace_selector: node_at(r1, "namespaceSelector"),
                    operations: strs_at(r1, "operations"),
                }
            }),
        subjects: list_at(n, "subjects")
            .iter()
            .map(|s| Subject {
                span: s.span,
                kind: str_at(Some(s), "kind"),
                name: str_at(Some(s), "name"),
                namespace: str_at(Some(s), "namespace"),
            })
            .collect(),
        roles: strs_at(n, "roles"),
        cluster_roles: strs_at(n, "clusterRoles"),
    }
}

/// Reads `{any, all}` or a bare list of conditions.
pub(super) fn conditions(node: &Node) -> Option<Conditions> {
    let list = |items: &[Node]| items.iter().map(condition).collect::<Vec<_>>();
    match &node.value {
        Value::Seq(items) => Some(Conditions {
            span: node.span,
            any: None,
            all: None,
            legacy: Some(list(items)),
        }),
        Value::Map(_) => Some(Conditions {
            span: node.span,
            any: node.get("any").and_then(Node::as_seq).map(list),
            all: node.get("all").and_then(Node::as_seq).map(list),
            legacy: None,
        }),
        _ => None,
    }
}

fn condition(node: &Node) -> Condition {
    let n = Some(node);
    Condition {
        span: node.span,
        key: node.get("key").cloned(),
        operator: str_at(n, "operator"),
        value: node.get("value").cloned(),
        message: str_at(n, "message"),
    }
}

pub(super) fn context(node: Option<&Node>) -> Vec<ContextEntry> {
    list_at(node, "context").iter().map(context_entry).collect()
}

fn context_entry(node: &Node) -> ContextEntry {
    let source = if let Some(c) = node.get("configMap") {
        let c = Some(c);
        ContextSource::ConfigMap {
            name: str_at(c, "name"),
            namespace: str_at(c, "namespace"),
        }
    } else if let Some(a) = node.get("apiCall") {
        let a = Some(a);
        ContextSource::ApiCall {
            url_path: str_at(a, "urlPath"),
            service_url: str_at(a.and_then(|a| a.get("service")), "url"),
            method: str_at(a, "method"),
            data: node_at(a, "data"),
            jmes_path: str_at(a, "jmesPath"),
            default: node_at(a, "default"),
        }
    } else if let Some(i) = node.get("imageRegistry") {
        let i = Some(i);
        ContextSource::ImageRegistry {
            reference: str_at(i, "reference"),
            jmes_path: str_at(i, "jmesPath"),
            credentials: node_at(i, "imageRegistryCredentials"),
        }
    } else if let Some(v) = node.get("variable") {
        let v = Some(v);
        ContextSource::Variable {
            value: v.and_then(|v| v.get("value")).cloned(),
            jmes_path: str_at(v, "jmesPath"),
            default: v.and_then(|v| v.get("default")).cloned(),
        }
    } else if let Some(g) = node.get("globalReference") {
        let g = Some(g);
        ContextSource::GlobalReference {
            name: str_at(g, "name"),
            jmes_path: str_at(g, "jmesPath"),
        }
    } else {
        ContextSource::Missing
    };
    ContextEntry {
        span: node.span,
        name: str_at(Some(node), "name"),
        source,
    }
}

fn any_pattern(node: Option<&Node>) -> Option<Vec<Node>> {
    node?
        .get("anyPattern")
        .and_then(Node::as_seq)
        .map(<[Node]>::to_vec)
}

fn deny(node: Option<&Node>) -> Option<Deny> {
    let d = node?.get("deny").filter(|d| !d.is_null())?;
    Some(Deny {
        span: d.span,
        conditions: d.get("conditions").and_then(conditions),
    })
}

fn validate(node: &Node) -> Validate {
    let n = Some(node);
    Validate {
        span: node.span,
        message: str_at(n, "message"),
        failure_action: str_at(n, "failureAction"),
        failure_action_overrides: list_at(n, "failureActionOverrides")
            .iter()
            .map(failure_action_override)
            .collect(),
        allow_existing_violations: bool_at(n, "allowExistingViolations"),
        pattern: node_at(n, "pattern"),
        any_pattern: any_pattern(n),
        deny: deny(n),
        foreach: list_at(n, "foreach").iter().map(validate_foreach).collect(),
        pod_security: node
            .get("podSecurity")
            .filter(|p| p.as_map().is_some())
            .map(|p| {
                let p1 = Some(p);
                PodSecurity {
                    span: p.span,
                    level: str_at(p1, "level"),
                    version: str_at(p1, "version"),
                    exclude: list_at(p1, "exclude").iter().map(pss_exclude).collect(),
                }
            }),
        cel: node.get("cel").filter(|c| c.as_map().is_some()).map(|c| {
            let c1 = Some(c);
            Cel {
                span: c.span,
                expressions: list_at(c1, "expressions")
                    .iter()
                    .map(cel_validation)
                    .collect(),
                param_kind: node_at(c1, "paramKind"),
                param_ref: node_at(c1, "paramRef"),
                variables: list_at(c1, "variables")
                    .iter()
                    .map(named_expression)
                    .collect(),
                audit_annotations: list_at(c1, "auditAnnotations")
                    .iter()
                    .map(audit_annotation)
                    .collect(),
            }
        }),
        manifests: node_at(n, "manifests"),
    }
}

fn pss_exclude(node: &Node) -> PodSecurityExclude {
    let n = Some(node);
    PodSecurityExclude {
        span: node.span,
        control_name: str_at(n, "controlName"),
        images: strs_at(n, "images"),
        restricted_field: str_at(n, "restrictedField"),
        values: strs_at(n, "values"),
    }
}

pub(super) fn cel_validation(node: &Node) -> CelValidation {
    let n = Some(node);
    CelValidation {
        span: node.span,
        expression: str_at(n, "expression"),
        message: str_at(n, "message"),
        message_expression: str_at(n, "messageExpression"),
        reason: str_at(n, "reason"),
    }
}

pub(super) fn audit_annotation(node: &Node) -> AuditAnnotation {
    let n = Some(node);
    AuditAnnotation {
        span: node.span,
        key: str_at(n, "key"),
        value_expression: str_at(n, "valueExpression"),
    }
}

fn validate_foreach(node: &Node) -> ValidateForEach {
    let n = Some(node);
    ValidateForEach {
        span: node.span,
        list: str_at(n, "list"),
        element_scope: bool_at(n, "elementScope"),
        context: context(n),
        preconditions: node.get("preconditions").and_then(conditions),
        pattern: node_at(n, "pattern"),
        any_pattern: any_pattern(n),
        deny: deny(n),
        foreach: list_at(n, "foreach").iter().map(validate_foreach).collect(),
    }
}

fn mutate(node: &Node) -> Mutate {
    let n = Some(node);
    Mutate {
        span: node.span,
        patch_strategic_merge: node_at(n, "patchStrategicMerge"),
        patches_json6902: str_at(n, "patchesJson6902"),
        foreach: list_at(n, "foreach").iter().map(mutate_foreach).collect(),
        targets: list_at(n, "targets").iter().map(target).collect(),
        mutate_existing_on_policy_update: bool_at(n, "mutateExistingOnPolicyUpdate"),
    }
}

fn mutate_foreach(node: &Node) -> MutateForEach {
    let n = Some(node);
    MutateForEach {
        span: node.span,
        list: str_at(n, "list"),
        order: str_at(n, "order"),
        context: context(n),
        preconditions: node.get("preconditions").and_then(conditions),
        patch_strategic_merge: node_at(n, "patchStrategicMerge"),
        patches_json6902: str_at(n, "patchesJson6902"),
        foreach: list_at(n, "foreach").iter().map(mutate_foreach).collect(),
    }
}

fn target(node: &Node) -> Target {
    let n = Some(node);
    Target {
        span: node.span,
        api_version: str_at(n, "apiVersion"),
        kind: str_at(n, "kind"),
        name: str_at(n, "name"),
        namespace: str_at(n, "namespace"),
        uid: str_at(n, "uid"),
        selector: node_at(n, "selector"),
        context: context(n),
        preconditions: node.get("preconditions").and_then(conditions),
    }
}

fn generate(node: &Node) -> Generate {
    let n = Some(node);
    Generate {
        span: node.span,
        api_version: str_at(n, "apiVersion"),
        kind: str_at(n, "kind"),
        name: str_at(n, "name"),
        namespace: str_at(n, "namespace"),
        synchronize: bool_at(n, "synchronize"),
        orphan_downstream_on_policy_delete: bool_at(n, "orphanDownstreamOnPolicyDelete"),
        generate_existing: bool_at(n, "generateExisting"),
        data: node_at(n, "data"),
        clone: node_at(n, "clone"),
        clone_list: node_at(n, "cloneList"),
        foreach: list_at(n, "foreach")
            .iter()
            .map(|f| {
                let f1 = Some(f);
                GenerateForEach {
                    span: f.span,
                    list: str_at(f1, "list"),
                    context: context(f1),
                    preconditions: f.get("preconditions").and_then(conditions),
                    api_version: str_at(f1, "apiVersion"),
                    kind: str_at(f1, "kind"),
                    name: str_at(f1, "name"),
                    namespace: str_at(f1, "namespace"),
                    data: node_at(f1, "data"),
                    clone: node_at(f1, "clone"),
                }
            })
            .collect(),
    }
}

fn image_verification(node: &Node) -> ImageVerification {
    let n = Some(node);
    ImageVerification {
        span: node.span,
        type_: str_at(n, "type"),
        image_references: strs_at(n, "imageReferences"),
        skip_image_references: strs_at(n, "skipImageReferences"),
        attestors: list_at(n, "attestors").iter().map(attestor_set).collect(),
        attestations: list_at(n, "attestations").to_vec(),
        failure_action: str_at(n, "failureAction"),
        mutate_digest: bool_at(n, "mutateDigest"),
        verify_digest: bool_at(n, "verifyDigest"),
        required: bool_at(n, "required"),
        use_cache: bool_at(n, "useCache"),
        image_registry_credentials: node_at(n, "imageRegistryCredentials"),
        repository: str_at(n, "repository"),
        validate: node_at(n, "validate"),
        image: str_at(n, "image"),
        key: str_at(n, "key"),
        issuer: str_at(n, "issuer"),
        subject: str_at(n, "subject"),
        roots: str_at(n, "roots"),
        annotations: node_at(n, "annotations"),
    }
}

fn attestor_set(node: &Node) -> AttestorSet {
    let n = Some(node);
    AttestorSet {
        span: node.span,
        count: int_at(n, "count"),
        entries: list_at(n, "entries")
            .iter()
            .map(|e| {
                let e1 = Some(e);
                Attestor {
                    span: e.span,
                    keys: node_at(e1, "keys"),
                    certificates: node_at(e1, "certificates"),
                    keyless: node_at(e1, "keyless"),
                    attestor: node_at(e1, "attestor"),
                    annotations: node_at(e1, "annotations"),
                    repository: str_at(e1, "repository"),
                }
            })
            .collect(),
    }
}

pub(super) fn build_exception(header: Header, spec: Option<&Node>) -> PolicyException {
    PolicyException {
        header,
        background: bool_at(spec, "background"),
        match_: spec.and_then(|s| s.get("match")).map(match_resources),
        conditions: spec.and_then(|s| s.get("conditions")).and_then(conditions),
        exceptions: list_at(spec, "exceptions")
            .iter()
            .map(|e| Exception {
                span: e.span,
                policy_name: str_at(Some(e), "policyName"),
                rule_names: strs_at(Some(e), "ruleNames"),
            })
            .collect(),
        pod_security: list_at(spec, "podSecurity")
            .iter()
            .map(pss_exclude)
            .collect(),
    }
}

pub(super) fn build_cleanup(header: Header, spec: Option<&Node>) -> CleanupPolicy {
    CleanupPolicy {
        header,
        match_: spec.and_then(|s| s.get("match")).map(match_resources),
        exclude: spec.and_then(|s| s.get("exclude")).map(match_resources),
        context: context(spec),
        conditions: spec.and_then(|s| s.get("conditions")).and_then(conditions),
        schedule: str_at(spec, "schedule"),
        deletion_propagation_policy: str_at(spec, "deletionPropagationPolicy"),
    }
}

pub(super) fn build_global_context(header: Header, spec: Option<&Node>) -> GlobalContextEntry {
    GlobalContextEntry {
        header,
        kubernetes_resource: node_at(spec, "kubernetesResource"),
        api_call: node_at(spec, "apiCall"),
        projections: list_at(spec, "projections")
            .iter()
            .map(|p| Projection {
                span: p.span,
                name: str_at(Some(p), "name"),
                jmes_path: str_at(Some(p), "jmesPath"),
            })
            .collect(),
    }
}
