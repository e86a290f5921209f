//! Documentation of the policy language, written once: policy kinds, fields, anchors, pattern
//! and condition operators, the variables of `{{ }}` templates and the CEL environment.
//!
//! The language server's hover and completion and the JSON schema of `palisade schema` all read
//! these tables together with the declarative [`schema`](super::schema), so an editor using
//! Palisade and one using yaml-language-server with the generated schema show the same words.
//!
//! Field documentation is keyed by a dotted path suffix (`rules.validate.pattern`, or just
//! `failureAction`): [`field_doc`] picks the longest entry that ends the field's path, so a
//! general entry (`name`) is overridden where a field means something particular
//! (`context.name`). List items do not appear in paths.

use crate::pattern::AnchorKind;

/// A policy kind, the API versions Kyverno serves it at (the lists `classify` accepts) and what
/// it does.
#[derive(Debug)]
pub struct KindDoc {
    pub kind: &'static str,
    pub api_versions: &'static [&'static str],
    pub doc: &'static str,
}

pub static KINDS: &[KindDoc] = &[
    KindDoc {
        kind: "ClusterPolicy",
        api_versions: super::KYVERNO_V1,
        doc: "A cluster-wide Kyverno policy: rules that validate, mutate, generate or verify images of resources in every namespace.",
    },
    KindDoc {
        kind: "Policy",
        api_versions: super::KYVERNO_V1,
        doc: "A namespaced Kyverno policy: like a ClusterPolicy, but it applies only to resources in its own namespace.",
    },
    KindDoc {
        kind: "PolicyException",
        api_versions: super::KYVERNO_V2,
        doc: "Exempts matching resources from named rules of named policies.",
    },
    KindDoc {
        kind: "CleanupPolicy",
        api_versions: super::KYVERNO_V2,
        doc: "Deletes matching resources in its namespace on a cron schedule.",
    },
    KindDoc {
        kind: "ClusterCleanupPolicy",
        api_versions: super::KYVERNO_V2,
        doc: "Deletes matching resources cluster-wide on a cron schedule.",
    },
    KindDoc {
        kind: "GlobalContextEntry",
        api_versions: super::KYVERNO_V2,
        doc: "Data (a watched Kubernetes resource or a polled API call) cached once and shared by all policies through `globalReference` context entries.",
    },
    KindDoc {
        kind: "ValidatingPolicy",
        api_versions: super::POLICIES,
        doc: "A CEL validating policy: `validations` are CEL expressions that must hold for matching requests.",
    },
    KindDoc {
        kind: "NamespacedValidatingPolicy",
        api_versions: super::POLICIES,
        doc: "A ValidatingPolicy that applies only in its own namespace.",
    },
    KindDoc {
        kind: "ImageValidatingPolicy",
        api_versions: super::POLICIES,
        doc: "Verifies image signatures and attestations with CEL, for images matched by `matchImageReferences`.",
    },
    KindDoc {
        kind: "MutatingPolicy",
        api_versions: super::POLICIES,
        doc: "A CEL mutating policy: `mutations` patch matching resources with ApplyConfiguration or JSONPatch expressions.",
    },
    KindDoc {
        kind: "GeneratingPolicy",
        api_versions: super::POLICIES,
        doc: "A CEL generating policy: creates resources when a matching resource is admitted.",
    },
    KindDoc {
        kind: "DeletingPolicy",
        api_versions: super::POLICIES,
        doc: "A CEL deleting policy: deletes matching resources on a cron schedule when its `conditions` hold.",
    },
    KindDoc {
        kind: "ValidatingAdmissionPolicy",
        api_versions: super::ADMISSION,
        doc: "Kubernetes' built-in CEL validation policy; it takes effect through a ValidatingAdmissionPolicyBinding.",
    },
    KindDoc {
        kind: "ValidatingAdmissionPolicyBinding",
        api_versions: super::ADMISSION,
        doc: "Binds a ValidatingAdmissionPolicy to resources and parameters, and says what a failure does.",
    },
    KindDoc {
        kind: "MutatingAdmissionPolicy",
        api_versions: super::ADMISSION,
        doc: "Kubernetes' built-in CEL mutation policy; it takes effect through a MutatingAdmissionPolicyBinding.",
    },
    KindDoc {
        kind: "MutatingAdmissionPolicyBinding",
        api_versions: super::ADMISSION,
        doc: "Binds a MutatingAdmissionPolicy to resources and parameters.",
    },
];

pub fn kind_doc(kind: &str) -> Option<&'static KindDoc> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// Field documentation by path suffix (see the module documentation).
static FIELDS: &[(&str, &str)] = &[
    // The document.
    ("apiVersion", "The API group and version of this object, e.g. `kyverno.io/v1`."),
    ("kind", "The kind of policy this document is."),
    ("metadata", "Name, namespace, labels and annotations of the policy object."),
    ("metadata.name", "The policy's name; rules, reports, exceptions and tests refer to it."),
    ("metadata.namespace", "The namespace of a namespaced policy (Policy, CleanupPolicy, ...)."),
    ("metadata.labels", "Labels of the policy object."),
    ("metadata.annotations", "Annotations of the policy object, e.g. `policies.kyverno.io/title`; `pod-policies.kyverno.io/autogen-controllers` controls rule auto-generation for pod controllers."),
    ("metadata.generateName", "A prefix from which the API server generates a unique name."),
    ("spec", "The policy's specification."),
    ("status", "Written by Kyverno; ignored in policy files."),
    // ClusterPolicy / Policy.
    ("spec.rules", "The policy's rules. Each rule matches resources and does one thing: validate, mutate, generate or verifyImages."),
    ("spec.applyRules", "`All` (default) applies every matching rule; `One` stops after the first matching rule."),
    ("spec.failurePolicy", "What the API server does when the webhook fails: `Fail` (default) or `Ignore`."),
    ("spec.validationFailureAction", "Whether a failed validate rule blocks the request (`Enforce`) or is only reported (`Audit`), for every rule of the policy."),
    ("spec.validationFailureActionOverrides", "Per-namespace failure actions for every rule of the policy."),
    ("spec.admission", "Whether the policy runs on admission requests (default true)."),
    ("spec.background", "Whether the policy also runs in background scans of existing resources (default true). Background rules cannot use user information such as `request.userInfo`."),
    ("spec.schemaValidation", "Once switched schema validation of patterns; it no longer has any effect."),
    ("spec.webhookTimeoutSeconds", "Webhook timeout in seconds for this policy."),
    ("spec.mutateExistingOnPolicyUpdate", "Mutate existing targets when the policy is created or updated, for every mutate rule."),
    ("spec.generateExisting", "Also generate for resources that existed before the policy, for every generate rule."),
    ("spec.generateExistingOnPolicyUpdate", "Generate for existing resources when the policy is created or updated."),
    ("spec.useServerSideApply", "Apply generated or mutated resources with server-side apply."),
    ("spec.webhookConfiguration", "Settings of the admission webhook Kyverno registers for this policy."),
    ("webhookConfiguration.failurePolicy", "What the API server does when the webhook fails or times out: `Fail` or `Ignore`."),
    ("webhookConfiguration.timeoutSeconds", "Webhook timeout in seconds (1 to 30)."),
    ("webhookConfiguration.matchConditions", "CEL conditions the API server evaluates before calling the webhook."),
    ("spec.emitWarning", "Return the policy's results as admission warnings too."),
    // Rules.
    ("rules.name", "The rule's name: unique in the policy, at most 63 characters. Reports, exceptions and tests refer to it."),
    ("context", "Variables computed before the rule runs, from a ConfigMap, an API call, an image registry, a JMESPath expression or a global context entry. Each entry's `name` becomes a variable usable in `{{ }}`."),
    ("context.name", "The variable name this context entry defines; use it in `{{ name }}` templates."),
    ("context.configMap", "Load a ConfigMap's data as the variable: `{{ name.data.key }}`."),
    ("context.apiCall", "Call the Kubernetes API (or a service) and store the response, optionally projected by `jmesPath`."),
    ("context.imageRegistry", "Fetch image metadata (manifest, config) from a registry."),
    ("context.variable", "A value computed from a literal `value` and/or a JMESPath expression, with a `default`."),
    ("context.globalReference", "Read a GlobalContextEntry by `name`, optionally projected by `jmesPath`."),
    ("apiCall.urlPath", "The Kubernetes API path to GET or POST, e.g. `/api/v1/namespaces/{{request.namespace}}/pods`."),
    ("apiCall.method", "`GET` (default) or `POST`."),
    ("apiCall.data", "Key/value pairs sent as the JSON body of a POST."),
    ("apiCall.service", "Call a service URL instead of the Kubernetes API."),
    ("jmesPath", "A JMESPath expression applied to the fetched data; its result is what is stored."),
    ("default", "The value used when the data or expression yields nothing."),
    ("variable.value", "A literal value (may contain `{{ }}` templates)."),
    ("match", "Which requests the rule applies to. Use `any` (one filter must match) or `all` (every filter must match)."),
    ("exclude", "Requests to leave out, even when `match` selects them. Same shape as `match`."),
    ("match.any", "Resource filters of which at least one must match."),
    ("match.all", "Resource filters that must all match."),
    ("exclude.any", "Resource filters of which at least one excludes the request."),
    ("exclude.all", "Resource filters that together exclude the request."),
    ("resources", "Select resources by kind, name, namespace, labels, annotations and operation."),
    ("resources.kinds", "Resource kinds, as `Kind`, `group/version/Kind` or `Kind/subresource`; wildcards allowed."),
    ("resources.name", "A single resource name; wildcards allowed."),
    ("resources.names", "Resource names; wildcards `*` and `?` allowed."),
    ("resources.namespaces", "Namespaces of the resources; wildcards allowed."),
    ("resources.annotations", "Annotations the resource must have; values may use wildcards."),
    ("resources.selector", "A label selector on the resource."),
    ("resources.namespaceSelector", "A label selector on the resource's namespace."),
    ("resources.operations", "Admission operations: CREATE, UPDATE, DELETE, CONNECT."),
    ("subjects", "Users, groups or service accounts making the request."),
    ("roles", "Namespaced Roles of the requesting user."),
    ("clusterRoles", "ClusterRoles of the requesting user."),
    ("matchLabels", "Labels that must all be present with these values."),
    ("matchExpressions", "Label requirements (`key`, `operator` In/NotIn/Exists/DoesNotExist, `values`)."),
    ("preconditions", "Conditions on the request that must hold for the rule to apply; otherwise the rule is skipped. `any` or `all` lists of conditions."),
    ("celPreconditions", "CEL expressions that must all be true for the rule to apply."),
    ("conditions", "Conditions: `any` (one must hold) or `all` (all must hold), each `{key, operator, value}`."),
    ("key", "The left-hand side of a condition: usually a `{{ }}` template."),
    ("operator", "How `key` is compared with `value`: Equals, NotEquals, AnyIn, AllIn, AnyNotIn, AllNotIn, GreaterThan, GreaterThanOrEquals, LessThan, LessThanOrEquals."),
    ("value", "The right-hand side of a condition; may contain templates."),
    ("skipBackgroundRequests", "Skip requests made by Kyverno's own background controllers (default true)."),
    ("reportProperties", "Extra key/value properties added to this rule's policy report results."),
    ("imageExtractors", "Where to find images in custom resources, per kind, for `images` variables and verifyImages."),
    // validate.
    ("validate", "A validate rule: the resource must match `pattern`, one of `anyPattern`, not meet `deny` conditions, pass `foreach` checks, `podSecurity`, `cel` or `manifests`."),
    ("validate.message", "The message reported when validation fails; may contain templates."),
    ("validate.failureAction", "`Enforce` blocks a failing request; `Audit` only reports it."),
    ("validate.failureActionOverrides", "Per-namespace overrides of `failureAction`."),
    ("validate.allowExistingViolations", "Allow updates of resources that already violated the rule (default true)."),
    ("pattern", "An overlay pattern the resource must match. Keys may carry anchors (`(k)`, `=(k)`, `X(k)`, `^(k)`, `<(k)`) and string values may use wildcards and operators (`>`, `<=`, `!`, `|`, `&`, ranges)."),
    ("anyPattern", "A list of patterns; the resource must match at least one."),
    ("deny", "Deny the request when its `conditions` hold."),
    ("foreach", "Apply checks to each element of a list: `list` is a JMESPath expression; inside, `{{ element }}` is the current element and `{{ elementIndex }}` its index."),
    ("foreach.list", "A JMESPath expression (without `{{ }}`) giving the list to iterate over, e.g. `request.object.spec.containers`."),
    ("foreach.elementScope", "Whether patterns apply to the element (true) or to the whole resource (false)."),
    ("podSecurity", "Check Pod Security Standards at `level` baseline or restricted, with `exclude`d controls."),
    ("podSecurity.level", "The Pod Security Standards level: privileged, baseline or restricted."),
    ("podSecurity.version", "The Pod Security Standards version, e.g. `v1.29` or `latest`."),
    ("podSecurity.exclude", "Controls (and optionally images and values) exempted from the check."),
    ("controlName", "The name of a Pod Security Standards control, e.g. `Capabilities`."),
    ("validate.cel", "Validate with CEL `expressions`, as a ValidatingAdmissionPolicy would."),
    ("expressions", "CEL expressions; each must be true."),
    ("expression", "A CEL expression."),
    ("messageExpression", "A CEL expression whose string result is the failure message."),
    ("validate.manifests", "Verify signed YAML manifests."),
    // mutate.
    ("mutate", "A mutate rule: change the resource with `patchStrategicMerge`, `patchesJson6902` or `foreach`; `targets` mutate other existing resources."),
    ("patchStrategicMerge", "A strategic-merge patch; keys may use `+(k)` (add if absent) and conditional anchors."),
    ("patchesJson6902", "An RFC 6902 JSON patch, as a YAML string of operations."),
    ("targets", "Existing resources to mutate, by apiVersion, kind, name and namespace."),
    ("mutateExistingOnPolicyUpdate", "Mutate existing targets when the policy is created or updated."),
    // generate.
    ("generate", "A generate rule: create a resource (`data`) or copy one (`clone`, `cloneList`) when a matching resource is admitted."),
    ("generate.synchronize", "Keep the generated resource in sync with the rule and the trigger."),
    ("generate.data", "The resource to create (its spec and metadata)."),
    ("generate.clone", "Copy an existing resource given by `namespace` and `name`."),
    ("generate.cloneList", "Copy every resource of `kinds` in `namespace` matching `selector`."),
    ("generate.orphanDownstreamOnPolicyDelete", "Keep generated resources when the policy is deleted."),
    ("generateExisting", "Also generate for resources that existed before the policy."),
    // verifyImages.
    ("verifyImages", "Verify image signatures and attestations; optionally replace tags by digests."),
    ("imageReferences", "Image references this entry verifies; wildcards allowed."),
    ("skipImageReferences", "Image references this entry skips."),
    ("attestors", "Who must have signed: sets of keys, certificates or keyless identities with a `count`."),
    ("attestations", "In-toto attestations to verify and check with `conditions`."),
    ("mutateDigest", "Replace image tags by digests in the resource."),
    ("verifyDigest", "Require images to be referenced by digest."),
    ("required", "Require every matching image to be verified."),
    ("useCache", "Cache verification results."),
    // PolicyException.
    ("exceptions", "The policies and rules exempted: `policyName` and `ruleNames`."),
    ("policyName", "The name of the policy this exception (or binding) applies to."),
    ("ruleNames", "The rules of that policy that are exempted; wildcards allowed."),
    // Cleanup policies.
    ("schedule", "A cron schedule, e.g. `*/5 * * * *`."),
    ("deletionPropagationPolicy", "How dependents are deleted: Foreground, Background or Orphan."),
    // CEL kinds.
    ("matchConstraints", "Which requests the policy applies to: resource rules, selectors and the match policy."),
    ("resourceRules", "API groups, versions, resources and operations to match."),
    ("excludeResourceRules", "API groups, versions, resources and operations to leave out."),
    ("matchConditions", "Named CEL conditions; all must be true for the policy to apply."),
    ("variables", "Named CEL expressions, available as `variables.<name>` in later expressions."),
    ("validations", "CEL validations: each `expression` must be true, else `message` is reported."),
    ("validationActions", "What a failed validation does: Deny, Warn and/or Audit."),
    ("auditAnnotations", "Audit annotations computed by CEL `valueExpression`s."),
    ("failurePolicy", "What happens when evaluating the policy fails: `Fail` or `Ignore`."),
    ("evaluation", "Where the policy runs (admission, background) and in which mode."),
    ("autogen", "Generate rules for pod controllers or Kubernetes admission policies from this policy."),
    ("mutations", "CEL mutations: ApplyConfiguration or JSONPatch expressions."),
    ("paramKind", "The kind of parameter resource the policy reads as `params`."),
    ("paramRef", "Which parameter resource a binding passes to the policy."),
    ("policyRefs", "The CEL policies this exception applies to, by `name` and `kind`."),
    ("matchImageReferences", "Images the policy verifies, by `glob` or CEL `expression`."),
];

/// Documentation of a field, from the key path leading to it (list items left out).
pub fn field_doc(path: &[&str]) -> Option<&'static str> {
    let mut best: Option<(usize, &'static str)> = None;
    for (key, doc) in FIELDS {
        let n = key.split('.').count();
        let suffix = key.split('.').rev().zip(path.iter().rev()).all(|(a, b)| a == *b);
        if suffix && n <= path.len() && best.is_none_or(|(bn, _)| n > bn) {
            best = Some((n, doc));
        }
    }
    best.map(|(_, d)| d)
}

/// What an anchor does, in one or two sentences.
pub fn anchor_doc(kind: AnchorKind) -> &'static str {
    match kind {
        AnchorKind::Condition => "Conditional anchor `(key)`: if the resource's field does not match the value, the enclosing map (or list element) is skipped instead of failing.",
        AnchorKind::Equality => "Equality anchor `=(key)`: if the field is present it must match; if it is absent the check passes.",
        AnchorKind::Negation => "Negation anchor `X(key)`: the field must not be present. Its value in the pattern is ignored.",
        AnchorKind::Existence => "Existence anchor `^(key)`: the list must contain at least one element matching each element of the pattern list.",
        AnchorKind::Global => "Global anchor `<(key)`: if the field does not match, the whole rule is skipped for this resource.",
        AnchorKind::AddIfNotPresent => "Add-if-not-present anchor `+(key)` (mutate only): adds the field with this value when it is absent.",
    }
}

/// Every anchor, in the order completion lists them.
pub const ANCHORS: &[AnchorKind] = &[
    AnchorKind::Condition,
    AnchorKind::Equality,
    AnchorKind::Negation,
    AnchorKind::Existence,
    AnchorKind::Global,
    AnchorKind::AddIfNotPresent,
];

/// Operators of pattern string values, with what they mean.
pub static PATTERN_OPERATORS: &[(&str, &str)] = &[
    (">", "Greater than: numbers, quantities (`1Gi`) and durations (`1h`) compare by value."),
    (">=", "Greater than or equal to (numbers, quantities, durations)."),
    ("<", "Less than (numbers, quantities, durations)."),
    ("<=", "Less than or equal to (numbers, quantities, durations)."),
    ("!", "Not equal: `!value` matches anything but `value` (wildcards allowed)."),
    ("|", "Or: `a | b` matches when either alternative matches."),
    ("&", "And: `>1 & <5` matches when both conditions match."),
    ("-", "Range: `1-10` matches values from 1 to 10 inclusive."),
    ("!-", "Not in range: `1!-10` matches values outside 1 to 10."),
    ("*", "Wildcard: any sequence of characters, `/` included."),
    ("?", "Wildcard: exactly one character."),
    ("?*", "A non-empty value: the field must be present and not empty."),
];

/// Condition operators (`preconditions`, `deny.conditions`), with what they mean.
pub static CONDITION_OPERATORS: &[(&str, &str)] = &[
    ("Equals", "The key equals the value (wildcards in the value allowed for strings; quantities and durations compare by value)."),
    ("NotEquals", "The key differs from the value."),
    ("AnyIn", "At least one of the key's values is in the value list (wildcards and ranges allowed)."),
    ("AllIn", "Every one of the key's values is in the value list."),
    ("AnyNotIn", "At least one of the key's values is not in the value list."),
    ("AllNotIn", "None of the key's values is in the value list."),
    ("GreaterThan", "The key is greater than the value (numbers, quantities, durations, semver)."),
    ("GreaterThanOrEquals", "The key is greater than or equal to the value."),
    ("LessThan", "The key is less than the value."),
    ("LessThanOrEquals", "The key is less than or equal to the value."),
];

/// A variable of `{{ }}` templates: its path, JSON type and where it comes from.
#[derive(Debug)]
pub struct VariableDoc {
    pub path: &'static str,
    pub ty: &'static str,
    pub doc: &'static str,
}

const fn var(path: &'static str, ty: &'static str, doc: &'static str) -> VariableDoc {
    VariableDoc { path, ty, doc }
}

pub static VARIABLES: &[VariableDoc] = &[
    var("request", "object", "The admission request (from the AdmissionReview the API server sent)."),
    var("request.object", "object", "The resource as it will be stored (null for DELETE)."),
    var("request.oldObject", "object", "The resource before the change (UPDATE and DELETE; null for CREATE)."),
    var("request.operation", "string", "The admission operation: CREATE, UPDATE, DELETE or CONNECT."),
    var("request.userInfo", "object", "Who made the request: `username`, `uid`, `groups`. Not available in background scans."),
    var("request.userInfo.username", "string", "The requesting user's name."),
    var("request.userInfo.uid", "string", "The requesting user's uid."),
    var("request.userInfo.groups", "array[string]", "The requesting user's groups."),
    var("request.roles", "array[string]", "Namespaced Roles bound to the requesting user (namespace:name)."),
    var("request.clusterRoles", "array[string]", "ClusterRoles bound to the requesting user."),
    var("request.namespace", "string", "The namespace of the request's resource."),
    var("request.name", "string", "The name of the request's resource."),
    var("request.kind", "object", "The resource's group, version and kind."),
    var("request.kind.kind", "string", "The resource's kind, e.g. `Pod`."),
    var("request.kind.group", "string", "The resource's API group."),
    var("request.kind.version", "string", "The resource's API version."),
    var("request.resource", "object", "The resource type: group, version, resource."),
    var("request.subResource", "string", "The subresource, e.g. `status` or `exec`."),
    var("request.requestKind", "object", "The kind of the original request, before conversion."),
    var("request.dryRun", "boolean", "Whether the request is a dry run."),
    var("request.options", "object", "Operation options, e.g. CreateOptions."),
    var("request.uid", "string", "The admission request's uid."),
    var("element", "any", "The current list element inside a `foreach` (declared by `foreach.list`)."),
    var("elementIndex", "number", "The index of the current element inside a `foreach`."),
    var("images", "object", "Images of the resource's containers, by container type and name: `images.containers.<name>.{registry, path, name, tag, digest}`."),
    var("images.containers", "object", "Images of `containers`, by container name."),
    var("images.initContainers", "object", "Images of `initContainers`, by container name."),
    var("images.ephemeralContainers", "object", "Images of `ephemeralContainers`, by container name."),
    var("serviceAccountName", "string", "The name of the requesting service account, when a service account made the request."),
    var("serviceAccountNamespace", "string", "The namespace of the requesting service account."),
    var("@", "any", "The current node: the whole context at the top of an expression."),
    var("target", "object", "The target resource being mutated, in mutate rules with `targets`."),
];

/// A name in the CEL environment of CEL fields, with its type and meaning.
#[derive(Debug)]
pub struct CelDoc {
    pub name: &'static str,
    pub signature: &'static str,
    pub doc: &'static str,
    pub example: &'static str,
}

const fn cel(
    name: &'static str,
    signature: &'static str,
    doc: &'static str,
    example: &'static str,
) -> CelDoc {
    CelDoc { name, signature, doc, example }
}

/// Variables of CEL expressions in policies.
pub static CEL_VARIABLES: &[CelDoc] = &[
    cel("object", "object", "The resource in the request (null for DELETE).", "object.metadata.name"),
    cel("oldObject", "object", "The resource before the change (null for CREATE).", "oldObject.spec.replicas"),
    cel("request", "object", "The admission request: operation, userInfo, namespace, kind, ...", "request.operation == 'CREATE'"),
    cel("params", "object", "The parameter resource of the binding, if any.", "params.maxReplicas"),
    cel("namespaceObject", "object", "The namespace of the resource (null for cluster-scoped resources).", "namespaceObject.metadata.labels"),
    cel("authorizer", "Authorizer", "Checks permissions of the requesting user.", "authorizer.requestResource.check('delete').allowed()"),
    cel("variables", "map", "The policy's named `variables`, evaluated lazily.", "variables.isProd"),
];

/// Functions and macros of CEL expressions (standard CEL and the Kubernetes libraries).
pub static CEL_FUNCTIONS: &[CelDoc] = &[
    cel("has", "has(e.f) -> bool", "Whether field `f` is present on `e`.", "has(object.spec.replicas)"),
    cel("size", "size(list|map|string) -> int", "The number of elements or characters.", "size(object.spec.containers) > 0"),
    cel("all", "list.all(x, p) -> bool", "Whether predicate `p` holds for every element.", "object.spec.containers.all(c, has(c.resources))"),
    cel("exists", "list.exists(x, p) -> bool", "Whether `p` holds for at least one element.", "object.spec.containers.exists(c, c.name == 'app')"),
    cel("exists_one", "list.exists_one(x, p) -> bool", "Whether `p` holds for exactly one element.", "[1, 2].exists_one(x, x > 1)"),
    cel("map", "list.map(x, e) -> list", "Transforms each element.", "object.spec.containers.map(c, c.image)"),
    cel("filter", "list.filter(x, p) -> list", "The elements for which `p` holds.", "[1, 2, 3].filter(x, x > 1) == [2, 3]"),
    cel("matches", "string.matches(regex) -> bool", "Whether the string matches an RE2 regular expression.", "object.metadata.name.matches('^[a-z]+$')"),
    cel("startsWith", "string.startsWith(prefix) -> bool", "Whether the string starts with `prefix`.", "'nginx:1.0'.startsWith('nginx')"),
    cel("endsWith", "string.endsWith(suffix) -> bool", "Whether the string ends with `suffix`.", "'a.yaml'.endsWith('.yaml')"),
    cel("contains", "string.contains(s) -> bool", "Whether the string contains `s`.", "'abc'.contains('b')"),
    cel("split", "string.split(sep) -> list(string)", "Splits the string at `sep` (Kubernetes strings library).", "'a,b'.split(',') == ['a', 'b']"),
    cel("join", "list(string).join(sep?) -> string", "Joins strings with `sep` (Kubernetes strings library).", "['a', 'b'].join('-') == 'a-b'"),
    cel("lowerAscii", "string.lowerAscii() -> string", "The string with ASCII letters lower-cased.", "'ABC'.lowerAscii() == 'abc'"),
    cel("upperAscii", "string.upperAscii() -> string", "The string with ASCII letters upper-cased.", "'abc'.upperAscii() == 'ABC'"),
    cel("replace", "string.replace(old, new) -> string", "Replaces every `old` by `new`.", "'a-b'.replace('-', '_') == 'a_b'"),
    cel("trim", "string.trim() -> string", "The string without leading and trailing white space.", "' a '.trim() == 'a'"),
    cel("int", "int(x) -> int", "Converts to an integer.", "int('42') == 42"),
    cel("string", "string(x) -> string", "Converts to a string.", "string(42) == '42'"),
    cel("double", "double(x) -> double", "Converts to a double.", "double(1) == 1.0"),
    cel("quantity", "quantity(string) -> Quantity", "Parses a Kubernetes quantity (Kubernetes library).", "quantity('1Gi').isGreaterThan(quantity('512Mi'))"),
    cel("url", "url(string) -> URL", "Parses a URL (Kubernetes library).", "url('https://a.io/x').getHost() == 'a.io'"),
    cel("ip", "ip(string) -> IP", "Parses an IP address (Kubernetes library).", "ip('10.0.0.1').family() == 4"),
    cel("cidr", "cidr(string) -> CIDR", "Parses a CIDR (Kubernetes library).", "cidr('10.0.0.0/8').containsIP(ip('10.1.2.3'))"),
    cel("isSorted", "list.isSorted() -> bool", "Whether the list is sorted (Kubernetes lists library).", "[1, 2].isSorted()"),
    cel("sum", "list.sum() -> number", "The sum of a list of numbers (Kubernetes lists library).", "[1, 2].sum() == 3"),
    cel("duration", "duration(string) -> duration", "Parses a duration such as `1h30m`.", "duration('1h') > duration('30m')"),
    cel("timestamp", "timestamp(string) -> timestamp", "Parses an RFC 3339 timestamp.", "timestamp('2024-01-01T00:00:00Z')"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_suffix_wins() {
        assert_eq!(
            field_doc(&["spec", "rules", "context", "name"]),
            field_doc(&["context", "name"])
        );
        assert_ne!(field_doc(&["spec", "rules", "name"]), field_doc(&["metadata", "name"]));
        assert!(field_doc(&["spec", "rules", "validate", "pattern"]).is_some_and(|d| d.contains("anchors")));
        assert_eq!(field_doc(&["nothing", "documented"]), None);
        // A path shorter than an entry does not match it.
        assert_eq!(field_doc(&["name"]), None);
    }

    #[test]
    fn every_condition_operator_is_documented() {
        for (name, replacement) in crate::check::CONDITION_OPERATORS {
            if replacement.is_none() {
                assert!(
                    CONDITION_OPERATORS.iter().any(|(n, _)| n == name),
                    "{name} has no documentation"
                );
            }
        }
        for (name, _) in CONDITION_OPERATORS {
            assert!(crate::check::CONDITION_OPERATORS.iter().any(|(n, _)| n == name));
        }
    }

    #[test]
    fn every_kind_is_recognised() {
        for k in KINDS {
            for api in k.api_versions {
                let text = format!("apiVersion: {api}\nkind: {}\n", k.kind);
                let (docs, _) = crate::syntax::parse(crate::FileId(0), &text);
                let root = &docs.first().map(|d| d.root.clone());
                let Some(root) = root else { panic!("no document") };
                assert!(
                    matches!(crate::ast::classify(root), crate::ast::Classified::Policy(_)),
                    "{} at {api} is not a policy kind",
                    k.kind
                );
            }
        }
    }
}
