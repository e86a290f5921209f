//! The shape of every policy kind as data: field names, types, enum values, required and
//! deprecated fields. The checker walks documents against these tables, so unknown-field,
//! type, enum and required-field checks are written once for every kind.
//!
//! Field names follow Kyverno's Go types and CRDs (`api/kyverno/v1/*_types.go`,
//! `config/crds/**`) and Kubernetes' admissionregistration types. Where a field holds free-form
//! data (patterns, generated resources, selectors of other APIs) its type is [`Ty::Any`].

/// The expected type of a field's value. `null` is accepted everywhere: Kubernetes treats an
/// explicit null like an absent field.
#[derive(Debug)]
pub enum Ty {
    /// Anything: patterns, resource data, values.
    Any,
    Str,
    Bool,
    Int,
    /// An integer or a string (Kubernetes `IntOrString`).
    IntOrStr,
    /// One of these strings, exactly.
    Enum(&'static [&'static str]),
    /// A map with known fields.
    Obj(&'static Obj),
    /// A map with arbitrary keys whose values have one type.
    Dict(&'static Ty),
    List(&'static Ty),
}

/// A map with known fields.
#[derive(Debug)]
pub struct Obj {
    pub fields: &'static [Field],
    /// Unknown fields are allowed (e.g. `metadata`, which the API server owns).
    pub open: bool,
    /// Groups of fields of which at most one may be set.
    pub exclusive: &'static [&'static [&'static str]],
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    /// Set for a deprecated field: what to use instead, as a sentence fragment.
    pub deprecated: Option<&'static str>,
}

impl Obj {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

const fn f(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
        deprecated: None,
    }
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
        deprecated: None,
    }
}

const fn dep(name: &'static str, ty: Ty, instead: &'static str) -> Field {
    Field {
        name,
        ty,
        required: false,
        deprecated: Some(instead),
    }
}

const fn obj(fields: &'static [Field]) -> Obj {
    Obj {
        fields,
        open: false,
        exclusive: &[],
    }
}

const STRS: Ty = Ty::List(&Ty::Str);

// ---------------------------------------------------------------------------------------------
// Shared pieces.

pub static METADATA: Obj = Obj {
    fields: &[
        f("name", Ty::Str),
        f("namespace", Ty::Str),
        f("labels", Ty::Dict(&Ty::Str)),
        f("annotations", Ty::Dict(&Ty::Str)),
        f("generateName", Ty::Str),
    ],
    open: true,
    exclusive: &[],
};

static LABEL_SELECTOR_REQUIREMENT: Obj = obj(&[
    req("key", Ty::Str),
    req(
        "operator",
        Ty::Enum(&["In", "NotIn", "Exists", "DoesNotExist"]),
    ),
    f("values", STRS),
]);

pub static LABEL_SELECTOR: Obj = obj(&[
    f("matchLabels", Ty::Dict(&Ty::Str)),
    f(
        "matchExpressions",
        Ty::List(&Ty::Obj(&LABEL_SELECTOR_REQUIREMENT)),
    ),
]);

pub const OPERATIONS: &[&str] = &["CREATE", "CONNECT", "UPDATE", "DELETE"];

static RESOURCE_DESCRIPTION: Obj = obj(&[
    f("kinds", STRS),
    dep("name", Ty::Str, "use `names`, a list"),
    f("names", STRS),
    f("namespaces", STRS),
    f("annotations", Ty::Dict(&Ty::Str)),
    f("selector", Ty::Obj(&LABEL_SELECTOR)),
    f("namespaceSelector", Ty::Obj(&LABEL_SELECTOR)),
    f("operations", Ty::List(&Ty::Enum(OPERATIONS))),
]);

static SUBJECT: Obj = obj(&[
    req("kind", Ty::Enum(&["User", "Group", "ServiceAccount"])),
    req("name", Ty::Str),
    f("namespace", Ty::Str),
    f("apiGroup", Ty::Str),
]);

static RESOURCE_FILTER: Obj = obj(&[
    f("resources", Ty::Obj(&RESOURCE_DESCRIPTION)),
    f("subjects", Ty::List(&Ty::Obj(&SUBJECT))),
    f("roles", STRS),
    f("clusterRoles", STRS),
]);

pub static MATCH_RESOURCES: Obj = Obj {
    fields: &[
        f("any", Ty::List(&Ty::Obj(&RESOURCE_FILTER))),
        f("all", Ty::List(&Ty::Obj(&RESOURCE_FILTER))),
        dep(
            "resources",
            Ty::Obj(&RESOURCE_DESCRIPTION),
            "put the filter in `any` or `all`",
        ),
        dep(
            "subjects",
            Ty::List(&Ty::Obj(&SUBJECT)),
            "put the filter in `any` or `all`",
        ),
        dep("roles", STRS, "put the filter in `any` or `all`"),
        dep("clusterRoles", STRS, "put the filter in `any` or `all`"),
    ],
    open: false,
    exclusive: &[
        &["any", "all"],
        &["any", "resources"],
        &["all", "resources"],
    ],
};

/// `match`/`exclude` of kinds that only take `any`/`all` (PolicyException, cleanup policies).
static MATCH_ANY_ALL: Obj = Obj {
    fields: &[
        f("any", Ty::List(&Ty::Obj(&RESOURCE_FILTER))),
        f("all", Ty::List(&Ty::Obj(&RESOURCE_FILTER))),
    ],
    open: false,
    exclusive: &[&["any", "all"]],
};

pub static CONDITION: Obj = obj(&[
    req("key", Ty::Any),
    // Operators are checked by the checker, which knows the deprecated names and their
    // replacements; an enum here would give a poorer message.
    req("operator", Ty::Str),
    f("value", Ty::Any),
    f("message", Ty::Str),
]);

pub static ANY_ALL_CONDITIONS: Obj = obj(&[
    f("any", Ty::List(&Ty::Obj(&CONDITION))),
    f("all", Ty::List(&Ty::Obj(&CONDITION))),
]);

static KEY_VALUE: Obj = obj(&[req("key", Ty::Str), f("value", Ty::Any)]);

static SERVICE_CALL: Obj = obj(&[
    req("url", Ty::Str),
    f("caBundle", Ty::Str),
    f("headers", Ty::List(&Ty::Obj(&KEY_VALUE))),
]);

static API_CALL: Obj = Obj {
    fields: &[
        f("urlPath", Ty::Str),
        f("method", Ty::Enum(&["GET", "POST"])),
        f("data", Ty::List(&Ty::Obj(&KEY_VALUE))),
        f("service", Ty::Obj(&SERVICE_CALL)),
        f("jmesPath", Ty::Str),
        f("default", Ty::Any),
    ],
    open: false,
    exclusive: &[&["urlPath", "service"]],
};

static CONFIG_MAP_REF: Obj = obj(&[req("name", Ty::Str), f("namespace", Ty::Str)]);

pub static REGISTRY_CREDENTIALS: Obj = obj(&[
    f("allowInsecureRegistry", Ty::Bool),
    f(
        "providers",
        Ty::List(&Ty::Enum(&[
            "default", "amazon", "azure", "google", "github",
        ])),
    ),
    f("secrets", STRS),
]);

static IMAGE_REGISTRY: Obj = obj(&[
    req("reference", Ty::Str),
    f("jmesPath", Ty::Str),
    f("imageRegistryCredentials", Ty::Obj(&REGISTRY_CREDENTIALS)),
]);

static VARIABLE: Obj = obj(&[
    f("value", Ty::Any),
    f("jmesPath", Ty::Str),
    f("default", Ty::Any),
]);

static GLOBAL_REFERENCE: Obj = obj(&[req("name", Ty::Str), f("jmesPath", Ty::Str)]);

pub const CONTEXT_SOURCES: &[&str] = &[
    "configMap",
    "apiCall",
    "imageRegistry",
    "variable",
    "globalReference",
];

pub static CONTEXT_ENTRY: Obj = Obj {
    fields: &[
        req("name", Ty::Str),
        f("configMap", Ty::Obj(&CONFIG_MAP_REF)),
        f("apiCall", Ty::Obj(&API_CALL)),
        f("imageRegistry", Ty::Obj(&IMAGE_REGISTRY)),
        f("variable", Ty::Obj(&VARIABLE)),
        f("globalReference", Ty::Obj(&GLOBAL_REFERENCE)),
    ],
    open: false,
    exclusive: &[CONTEXT_SOURCES],
};

const CONTEXT: Ty = Ty::List(&Ty::Obj(&CONTEXT_ENTRY));
/// Preconditions: `{any, all}` or the legacy bare list of conditions.
const PRECONDITIONS: Ty = Ty::Any;

pub const FAILURE_ACTIONS: &[&str] = &["Audit", "Enforce"];
pub const LEGACY_FAILURE_ACTIONS: &[&str] = &["Audit", "Enforce", "audit", "enforce"];

static FAILURE_ACTION_OVERRIDE: Obj = obj(&[
    f("action", Ty::Enum(LEGACY_FAILURE_ACTIONS)),
    f("namespaces", STRS),
    f("namespaceSelector", Ty::Obj(&LABEL_SELECTOR)),
]);

// ---------------------------------------------------------------------------------------------
// validate

static DENY: Obj = obj(&[f("conditions", PRECONDITIONS)]);

pub static VALIDATE_FOREACH: Obj = Obj {
    fields: &[
        req("list", Ty::Str),
        f("elementScope", Ty::Bool),
        f("context", CONTEXT),
        f("preconditions", PRECONDITIONS),
        f("pattern", Ty::Any),
        f("anyPattern", Ty::List(&Ty::Any)),
        f("deny", Ty::Obj(&DENY)),
        f("foreach", Ty::List(&Ty::Obj(&VALIDATE_FOREACH))),
    ],
    open: false,
    exclusive: &[&["pattern", "anyPattern", "deny", "foreach"]],
};

pub const PSS_LEVELS: &[&str] = &["privileged", "baseline", "restricted"];

static PSS_EXCLUDE: Obj = obj(&[
    req("controlName", Ty::Str),
    f("images", STRS),
    f("restrictedField", Ty::Str),
    f("values", STRS),
]);

static POD_SECURITY: Obj = obj(&[
    f("level", Ty::Enum(PSS_LEVELS)),
    f("version", Ty::Str),
    f("exclude", Ty::List(&Ty::Obj(&PSS_EXCLUDE))),
]);

static CEL_VALIDATION: Obj = obj(&[
    req("expression", Ty::Str),
    f("message", Ty::Str),
    f("messageExpression", Ty::Str),
    f("reason", Ty::Str),
]);

static NAMED_EXPRESSION: Obj = obj(&[req("name", Ty::Str), req("expression", Ty::Str)]);

static AUDIT_ANNOTATION: Obj = obj(&[req("key", Ty::Str), req("valueExpression", Ty::Str)]);

static PARAM_KIND: Obj = obj(&[f("apiVersion", Ty::Str), f("kind", Ty::Str)]);

static PARAM_REF: Obj = obj(&[
    f("name", Ty::Str),
    f("namespace", Ty::Str),
    f("selector", Ty::Obj(&LABEL_SELECTOR)),
    f("parameterNotFoundAction", Ty::Enum(&["Allow", "Deny"])),
]);

static CEL: Obj = obj(&[
    f("expressions", Ty::List(&Ty::Obj(&CEL_VALIDATION))),
    f("paramKind", Ty::Obj(&PARAM_KIND)),
    f("paramRef", Ty::Obj(&PARAM_REF)),
    f("auditAnnotations", Ty::List(&Ty::Obj(&AUDIT_ANNOTATION))),
    f("variables", Ty::List(&Ty::Obj(&NAMED_EXPRESSION))),
    f("generate", Ty::Bool),
]);

static DRY_RUN: Obj = obj(&[f("enable", Ty::Bool), f("namespace", Ty::Str)]);

static MANIFESTS: Obj = obj(&[
    f("attestors", Ty::List(&Ty::Obj(&ATTESTOR_SET))),
    f("annotationDomain", Ty::Str),
    f("ignoreFields", Ty::Any),
    f("dryRun", Ty::Obj(&DRY_RUN)),
    f("repository", Ty::Str),
]);

pub static VALIDATION: Obj = Obj {
    fields: &[
        f("message", Ty::Str),
        f("failureAction", Ty::Enum(FAILURE_ACTIONS)),
        f(
            "failureActionOverrides",
            Ty::List(&Ty::Obj(&FAILURE_ACTION_OVERRIDE)),
        ),
        f("allowExistingViolations", Ty::Bool),
        f("manifests", Ty::Obj(&MANIFESTS)),
        f("foreach", Ty::List(&Ty::Obj(&VALIDATE_FOREACH))),
        f("pattern", Ty::Any),
        f("anyPattern", Ty::List(&Ty::Any)),
        f("deny", Ty::Obj(&DENY)),
        f("podSecurity", Ty::Obj(&POD_SECURITY)),
        f("cel", Ty::Obj(&CEL)),
        dep(
            "assert",
            Ty::Any,
            "remove it; `assert` has had no effect since Kyverno 1.19",
        ),
    ],
    open: false,
    exclusive: &[&[
        "pattern",
        "anyPattern",
        "deny",
        "foreach",
        "podSecurity",
        "cel",
        "manifests",
    ]],
};

// ---------------------------------------------------------------------------------------------
// mutate

pub static MUTATE_FOREACH: Obj = Obj {
    fields: &[
        req("list", Ty::Str),
        f("order", Ty::Enum(&["Ascending", "Descending"])),
        f("context", CONTEXT),
        f("preconditions", PRECONDITIONS),
        f("patchStrategicMerge", Ty::Any),
        f("patchesJson6902", Ty::Str),
        f("foreach", Ty::List(&Ty::Obj(&MUTATE_FOREACH))),
    ],
    open: false,
    exclusive: &[&["patchStrategicMerge", "patchesJson6902", "foreach"]],
};

static TARGET: Obj = obj(&[
    f("apiVersion", Ty::Str),
    f("kind", Ty::Str),
    f("name", Ty::Str),
    f("namespace", Ty::Str),
    f("uid", Ty::Str),
    f("selector", Ty::Obj(&LABEL_SELECTOR)),
    f("context", CONTEXT),
    f("preconditions", PRECONDITIONS),
]);

pub static MUTATION: Obj = Obj {
    fields: &[
        f("mutateExistingOnPolicyUpdate", Ty::Bool),
        f("targets", Ty::List(&Ty::Obj(&TARGET))),
        f("patchStrategicMerge", Ty::Any),
        f("patchesJson6902", Ty::Str),
        f("foreach", Ty::List(&Ty::Obj(&MUTATE_FOREACH))),
    ],
    open: false,
    exclusive: &[&["patchStrategicMerge", "patchesJson6902", "foreach"]],
};

// ---------------------------------------------------------------------------------------------
// generate

static CLONE_FROM: Obj = obj(&[f("namespace", Ty::Str), f("name", Ty::Str)]);

static CLONE_LIST: Obj = obj(&[
    f("namespace", Ty::Str),
    f("kinds", STRS),
    f("selector", Ty::Obj(&LABEL_SELECTOR)),
]);

static GENERATE_FOREACH: Obj = Obj {
    fields: &[
        req("list", Ty::Str),
        f("context", CONTEXT),
        f("preconditions", PRECONDITIONS),
        f("apiVersion", Ty::Str),
        f("kind", Ty::Str),
        f("name", Ty::Str),
        f("namespace", Ty::Str),
        f("uid", Ty::Str),
        f("data", Ty::Any),
        f("clone", Ty::Obj(&CLONE_FROM)),
    ],
    open: false,
    exclusive: &[&["data", "clone"]],
};

pub static GENERATION: Obj = Obj {
    fields: &[
        f("generateExisting", Ty::Bool),
        f("synchronize", Ty::Bool),
        f("orphanDownstreamOnPolicyDelete", Ty::Bool),
        f("apiVersion", Ty::Str),
        f("kind", Ty::Str),
        f("name", Ty::Str),
        f("namespace", Ty::Str),
        f("uid", Ty::Str),
        f("data", Ty::Any),
        f("clone", Ty::Obj(&CLONE_FROM)),
        f("cloneList", Ty::Obj(&CLONE_LIST)),
        f("foreach", Ty::List(&Ty::Obj(&GENERATE_FOREACH))),
    ],
    open: false,
    exclusive: &[&["data", "clone", "cloneList", "foreach"]],
};

// ---------------------------------------------------------------------------------------------
// verifyImages

static REKOR: Obj = obj(&[
    f("url", Ty::Str),
    f("pubkey", Ty::Str),
    f("ignoreTlog", Ty::Bool),
]);

static CTLOG: Obj = obj(&[
    f("ignoreSCT", Ty::Bool),
    f("pubkey", Ty::Str),
    f("tsaCertChain", Ty::Str),
]);

static SECRET_REF: Obj = obj(&[req("name", Ty::Str), f("namespace", Ty::Str)]);

static STATIC_KEY: Obj = obj(&[
    f("publicKeys", Ty::Str),
    f(
        "signatureAlgorithm",
        Ty::Enum(&["sha224", "sha256", "sha384", "sha512"]),
    ),
    f("kms", Ty::Str),
    f("secret", Ty::Obj(&SECRET_REF)),
    f("rekor", Ty::Obj(&REKOR)),
    f("ctlog", Ty::Obj(&CTLOG)),
]);

static CERTIFICATE: Obj = obj(&[
    f("cert", Ty::Str),
    f("certChain", Ty::Str),
    f("rekor", Ty::Obj(&REKOR)),
    f("ctlog", Ty::Obj(&CTLOG)),
]);

static KEYLESS: Obj = obj(&[
    f("issuer", Ty::Str),
    f("issuerRegExp", Ty::Str),
    f("subject", Ty::Str),
    f("subjectRegExp", Ty::Str),
    f("roots", Ty::Str),
    f("additionalExtensions", Ty::Dict(&Ty::Str)),
    f("rekor", Ty::Obj(&REKOR)),
    f("ctlog", Ty::Obj(&CTLOG)),
]);

static ATTESTOR: Obj = Obj {
    fields: &[
        f("keys", Ty::Obj(&STATIC_KEY)),
        f("certificates", Ty::Obj(&CERTIFICATE)),
        f("keyless", Ty::Obj(&KEYLESS)),
        f("attestor", Ty::Any),
        f("annotations", Ty::Dict(&Ty::Str)),
        f("repository", Ty::Str),
    ],
    open: false,
    exclusive: &[&["keys", "certificates", "keyless", "attestor"]],
};

pub static ATTESTOR_SET: Obj = obj(&[
    f("count", Ty::Int),
    f("entries", Ty::List(&Ty::Obj(&ATTESTOR))),
]);

static ATTESTATION: Obj = obj(&[
    f("name", Ty::Str),
    f("type", Ty::Str),
    dep("predicateType", Ty::Str, "use `type`"),
    f("attestors", Ty::List(&Ty::Obj(&ATTESTOR_SET))),
    f("conditions", Ty::List(&Ty::Obj(&ANY_ALL_CONDITIONS))),
]);

static IMAGE_VALIDATE: Obj = obj(&[f("message", Ty::Str), f("deny", Ty::Obj(&DENY))]);

pub static IMAGE_VERIFICATION: Obj = Obj {
    fields: &[
        f("failureAction", Ty::Enum(FAILURE_ACTIONS)),
        f("type", Ty::Enum(&["Cosign", "SigstoreBundle", "Notary"])),
        dep("image", Ty::Str, "use `imageReferences`"),
        f("imageReferences", STRS),
        f("skipImageReferences", STRS),
        dep(
            "key",
            Ty::Str,
            "use `attestors[].entries[].keys.publicKeys`",
        ),
        dep(
            "roots",
            Ty::Str,
            "use `attestors[].entries[].keyless.roots`",
        ),
        dep(
            "subject",
            Ty::Str,
            "use `attestors[].entries[].keyless.subject`",
        ),
        dep(
            "issuer",
            Ty::Str,
            "use `attestors[].entries[].keyless.issuer`",
        ),
        dep(
            "additionalExtensions",
            Ty::Dict(&Ty::Str),
            "use `attestors[].entries[].keyless.additionalExtensions`",
        ),
        f("attestors", Ty::List(&Ty::Obj(&ATTESTOR_SET))),
        f("attestations", Ty::List(&Ty::Obj(&ATTESTATION))),
        dep(
            "annotations",
            Ty::Dict(&Ty::Str),
            "use `attestors[].entries[].annotations`",
        ),
        f("repository", Ty::Str),
        f("cosignOCI11", Ty::Bool),
        f("mutateDigest", Ty::Bool),
        f("verifyDigest", Ty::Bool),
        f("validate", Ty::Obj(&IMAGE_VALIDATE)),
        f("required", Ty::Bool),
        f("imageRegistryCredentials", Ty::Obj(&REGISTRY_CREDENTIALS)),
        f("useCache", Ty::Bool),
    ],
    open: false,
    exclusive: &[&["image", "imageReferences"]],
};

static IMAGE_EXTRACTOR: Obj = obj(&[
    req("path", Ty::Str),
    f("value", Ty::Str),
    f("name", Ty::Str),
    f("key", Ty::Str),
    f("jmesPath", Ty::Str),
]);

// ---------------------------------------------------------------------------------------------
// ClusterPolicy / Policy

pub const RULE_TYPES: &[&str] = &["validate", "mutate", "generate", "verifyImages"];

pub static RULE: Obj = Obj {
    fields: &[
        req("name", Ty::Str),
        f("context", CONTEXT),
        req("match", Ty::Obj(&MATCH_RESOURCES)),
        f("exclude", Ty::Obj(&MATCH_RESOURCES)),
        f(
            "imageExtractors",
            Ty::Dict(&Ty::List(&Ty::Obj(&IMAGE_EXTRACTOR))),
        ),
        f("preconditions", PRECONDITIONS),
        f("celPreconditions", Ty::List(&Ty::Obj(&NAMED_EXPRESSION))),
        f("validate", Ty::Obj(&VALIDATION)),
        f("mutate", Ty::Obj(&MUTATION)),
        f("generate", Ty::Obj(&GENERATION)),
        f("verifyImages", Ty::List(&Ty::Obj(&IMAGE_VERIFICATION))),
        f("skipBackgroundRequests", Ty::Bool),
        f("reportProperties", Ty::Dict(&Ty::Str)),
    ],
    open: false,
    exclusive: &[RULE_TYPES],
};

static MATCH_CONDITION: Obj = obj(&[req("name", Ty::Str), req("expression", Ty::Str)]);

static WEBHOOK_CONFIGURATION: Obj = obj(&[
    f("failurePolicy", Ty::Enum(&["Fail", "Ignore"])),
    f("timeoutSeconds", Ty::Int),
    f("matchConditions", Ty::List(&Ty::Obj(&MATCH_CONDITION))),
]);

pub static KYVERNO_SPEC: Obj = obj(&[
    f("rules", Ty::List(&Ty::Obj(&RULE))),
    f("applyRules", Ty::Enum(&["All", "One"])),
    dep(
        "failurePolicy",
        Ty::Enum(&["Fail", "Ignore"]),
        "use `webhookConfiguration.failurePolicy`",
    ),
    dep(
        "validationFailureAction",
        Ty::Enum(LEGACY_FAILURE_ACTIONS),
        "use `failureAction` in each validate rule",
    ),
    dep(
        "validationFailureActionOverrides",
        Ty::List(&Ty::Obj(&FAILURE_ACTION_OVERRIDE)),
        "use `failureActionOverrides` in each validate rule",
    ),
    f("admission", Ty::Bool),
    f("background", Ty::Bool),
    dep("schemaValidation", Ty::Bool, "remove it; it has no effect"),
    dep(
        "webhookTimeoutSeconds",
        Ty::Int,
        "use `webhookConfiguration.timeoutSeconds`",
    ),
    dep(
        "mutateExistingOnPolicyUpdate",
        Ty::Bool,
        "use `mutateExistingOnPolicyUpdate` in each mutate rule",
    ),
    dep(
        "generateExisting",
        Ty::Bool,
        "use `generateExisting` in each generate rule",
    ),
    dep(
        "generateExistingOnPolicyUpdate",
        Ty::Bool,
        "use `generateExisting` in each generate rule",
    ),
    f("useServerSideApply", Ty::Bool),
    f("webhookConfiguration", Ty::Obj(&WEBHOOK_CONFIGURATION)),
    f("emitWarning", Ty::Bool),
]);

// ---------------------------------------------------------------------------------------------
// kyverno.io/v2 kinds

static EXCEPTION: Obj = obj(&[req("policyName", Ty::Str), req("ruleNames", STRS)]);

pub static POLICY_EXCEPTION_SPEC: Obj = obj(&[
    f("background", Ty::Bool),
    req("match", Ty::Obj(&MATCH_ANY_ALL)),
    f("conditions", Ty::Obj(&ANY_ALL_CONDITIONS)),
    req("exceptions", Ty::List(&Ty::Obj(&EXCEPTION))),
    f("podSecurity", Ty::List(&Ty::Obj(&PSS_EXCLUDE))),
]);

pub static CLEANUP_SPEC: Obj = obj(&[
    req("match", Ty::Obj(&MATCH_ANY_ALL)),
    f("exclude", Ty::Obj(&MATCH_ANY_ALL)),
    f("context", CONTEXT),
    f("conditions", Ty::Obj(&ANY_ALL_CONDITIONS)),
    req("schedule", Ty::Str),
    f(
        "deletionPropagationPolicy",
        Ty::Enum(&["Foreground", "Background", "Orphan"]),
    ),
]);

static KUBERNETES_RESOURCE: Obj = obj(&[
    f("group", Ty::Str),
    req("version", Ty::Str),
    req("resource", Ty::Str),
    f("namespace", Ty::Str),
]);

static GLOBAL_API_CALL: Obj = Obj {
    fields: &[
        f("urlPath", Ty::Str),
        f("method", Ty::Enum(&["GET", "POST"])),
        f("data", Ty::List(&Ty::Obj(&KEY_VALUE))),
        f("service", Ty::Obj(&SERVICE_CALL)),
        f("refreshInterval", Ty::Str),
        f("retryLimit", Ty::Int),
    ],
    open: false,
    exclusive: &[&["urlPath", "service"]],
};

static PROJECTION: Obj = obj(&[req("name", Ty::Str), req("jmesPath", Ty::Str)]);

pub static GLOBAL_CONTEXT_ENTRY_SPEC: Obj = Obj {
    fields: &[
        f("kubernetesResource", Ty::Obj(&KUBERNETES_RESOURCE)),
        f("apiCall", Ty::Obj(&GLOBAL_API_CALL)),
        f("projections", Ty::List(&Ty::Obj(&PROJECTION))),
    ],
    open: false,
    exclusive: &[&["kubernetesResource", "apiCall"]],
};

// ---------------------------------------------------------------------------------------------
// admissionregistration.k8s.io and policies.kyverno.io (CEL kinds)

static RULE_WITH_OPERATIONS: Obj = obj(&[
    f("apiGroups", STRS),
    f("apiVersions", STRS),
    f(
        "operations",
        Ty::List(&Ty::Enum(&["*", "CREATE", "CONNECT", "UPDATE", "DELETE"])),
    ),
    f("resources", STRS),
    f("resourceNames", STRS),
    f("scope", Ty::Enum(&["*", "Cluster", "Namespaced"])),
]);

pub static MATCH_CONSTRAINTS: Obj = obj(&[
    f("namespaceSelector", Ty::Obj(&LABEL_SELECTOR)),
    f("objectSelector", Ty::Obj(&LABEL_SELECTOR)),
    f("resourceRules", Ty::List(&Ty::Obj(&RULE_WITH_OPERATIONS))),
    f(
        "excludeResourceRules",
        Ty::List(&Ty::Obj(&RULE_WITH_OPERATIONS)),
    ),
    f("matchPolicy", Ty::Enum(&["Exact", "Equivalent"])),
]);

const FAILURE_POLICY: Ty = Ty::Enum(&["Fail", "Ignore"]);
const NAMED_EXPRESSIONS: Ty = Ty::List(&Ty::Obj(&NAMED_EXPRESSION));

pub static VAP_SPEC: Obj = obj(&[
    f("paramKind", Ty::Obj(&PARAM_KIND)),
    f("matchConstraints", Ty::Obj(&MATCH_CONSTRAINTS)),
    f("validations", Ty::List(&Ty::Obj(&CEL_VALIDATION))),
    f("failurePolicy", FAILURE_POLICY),
    f("auditAnnotations", Ty::List(&Ty::Obj(&AUDIT_ANNOTATION))),
    f("matchConditions", NAMED_EXPRESSIONS),
    f("variables", NAMED_EXPRESSIONS),
]);

static JSON_PATCH: Obj = obj(&[req("expression", Ty::Str)]);
static APPLY_CONFIGURATION: Obj = obj(&[req("expression", Ty::Str)]);

static MUTATION_CEL: Obj = obj(&[
    req("patchType", Ty::Enum(&["ApplyConfiguration", "JSONPatch"])),
    f("applyConfiguration", Ty::Obj(&APPLY_CONFIGURATION)),
    f("jsonPatch", Ty::Obj(&JSON_PATCH)),
]);

pub static MAP_SPEC: Obj = obj(&[
    f("paramKind", Ty::Obj(&PARAM_KIND)),
    f("matchConstraints", Ty::Obj(&MATCH_CONSTRAINTS)),
    f("variables", NAMED_EXPRESSIONS),
    f("mutations", Ty::List(&Ty::Obj(&MUTATION_CEL))),
    f("failurePolicy", FAILURE_POLICY),
    f("matchConditions", NAMED_EXPRESSIONS),
    f("reinvocationPolicy", Ty::Enum(&["Never", "IfNeeded"])),
]);

static MATCH_RESOURCES_VAP: Obj = obj(&[
    f("namespaceSelector", Ty::Obj(&LABEL_SELECTOR)),
    f("objectSelector", Ty::Obj(&LABEL_SELECTOR)),
    f("resourceRules", Ty::List(&Ty::Obj(&RULE_WITH_OPERATIONS))),
    f(
        "excludeResourceRules",
        Ty::List(&Ty::Obj(&RULE_WITH_OPERATIONS)),
    ),
    f("matchPolicy", Ty::Enum(&["Exact", "Equivalent"])),
]);

pub static BINDING_SPEC: Obj = obj(&[
    req("policyName", Ty::Str),
    f("paramRef", Ty::Obj(&PARAM_REF)),
    f("matchResources", Ty::Obj(&MATCH_RESOURCES_VAP)),
    f(
        "validationActions",
        Ty::List(&Ty::Enum(&["Deny", "Warn", "Audit"])),
    ),
]);

static ENABLED: Obj = obj(&[f("enabled", Ty::Bool)]);

static EVALUATION: Obj = obj(&[
    f("admission", Ty::Obj(&ENABLED)),
    f("background", Ty::Obj(&ENABLED)),
    f("mode", Ty::Enum(&["Kubernetes", "JSON", "HTTP", "Envoy"])),
    f("mutateExisting", Ty::Obj(&ENABLED)),
    f("generateExisting", Ty::Obj(&ENABLED)),
    f("synchronize", Ty::Obj(&ENABLED)),
    f("orphanDownstreamOnPolicyDelete", Ty::Obj(&ENABLED)),
    f("skipBackgroundRequests", Ty::Bool),
    f("useServerSideApply", Ty::Bool),
]);

static POD_CONTROLLERS: Obj = obj(&[f("controllers", STRS)]);

static AUTOGEN: Obj = obj(&[
    f("podControllers", Ty::Obj(&POD_CONTROLLERS)),
    f("validatingAdmissionPolicy", Ty::Obj(&ENABLED)),
    f("mutatingAdmissionPolicy", Ty::Obj(&ENABLED)),
]);

static CEL_WEBHOOK_CONFIGURATION: Obj = obj(&[f("timeoutSeconds", Ty::Int)]);

pub static VPOL_SPEC: Obj = obj(&[
    f("matchConstraints", Ty::Obj(&MATCH_CONSTRAINTS)),
    f("matchConditions", NAMED_EXPRESSIONS),
    f("variables", NAMED_EXPRESSIONS),
    f("validations", VAP_VALIDATIONS_TY),
    f("auditAnnotations", Ty::List(&Ty::Obj(&AUDIT_ANNOTATION))),
    f(
        "validationActions",
        Ty::List(&Ty::Enum(&["Deny", "Warn", "Audit"])),
    ),
    f("failurePolicy", FAILURE_POLICY),
    f("evaluation", Ty::Obj(&EVALUATION)),
    f("webhookConfiguration", Ty::Obj(&CEL_WEBHOOK_CONFIGURATION)),
    f("autogen", Ty::Obj(&AUTOGEN)),
]);

const VAP_VALIDATIONS_TY: Ty = Ty::List(&Ty::Obj(&CEL_VALIDATION));

static GLOB_OR_EXPRESSION: Obj = Obj {
    fields: &[f("glob", Ty::Str), f("expression", Ty::Str)],
    open: false,
    exclusive: &[&["glob", "expression"]],
};

static IMAGE_EXPRESSION: Obj = obj(&[req("name", Ty::Str), req("expression", Ty::Str)]);

static IVPOL_ATTESTATION: Obj = obj(&[
    req("name", Ty::Str),
    f("intoto", Ty::Any),
    f("referrer", Ty::Any),
]);

static IVPOL_ATTESTOR: Obj = obj(&[
    req("name", Ty::Str),
    f("cosign", Ty::Any),
    f("notary", Ty::Any),
]);

static VALIDATION_CONFIGURATIONS: Obj = obj(&[
    f("mutateDigest", Ty::Bool),
    f("verifyDigest", Ty::Bool),
    f("required", Ty::Bool),
]);

static CEL_CREDENTIALS: Obj = obj(&[
    f("allowInsecureRegistry", Ty::Bool),
    f("providers", STRS),
    f("secrets", STRS),
]);

pub static IVPOL_SPEC: Obj = obj(&[
    f("matchConstraints", Ty::Obj(&MATCH_CONSTRAINTS)),
    f("matchConditions", NAMED_EXPRESSIONS),
    f("variables", NAMED_EXPRESSIONS),
    f("validations", VAP_VALIDATIONS_TY),
    f("auditAnnotations", Ty::List(&Ty::Obj(&AUDIT_ANNOTATION))),
    f(
        "validationActions",
        Ty::List(&Ty::Enum(&["Deny", "Warn", "Audit"])),
    ),
    f("failurePolicy", FAILURE_POLICY),
    f("evaluation", Ty::Obj(&EVALUATION)),
    f("webhookConfiguration", Ty::Obj(&CEL_WEBHOOK_CONFIGURATION)),
    f("autogen", Ty::Obj(&AUTOGEN)),
    f(
        "matchImageReferences",
        Ty::List(&Ty::Obj(&GLOB_OR_EXPRESSION)),
    ),
    f("images", Ty::List(&Ty::Obj(&IMAGE_EXPRESSION))),
    f("attestors", Ty::List(&Ty::Obj(&IVPOL_ATTESTOR))),
    f("attestations", Ty::List(&Ty::Obj(&IVPOL_ATTESTATION))),
    f(
        "validationConfigurations",
        Ty::Obj(&VALIDATION_CONFIGURATIONS),
    ),
    f("credentials", Ty::Obj(&CEL_CREDENTIALS)),
]);

pub static MPOL_SPEC: Obj = obj(&[
    f("matchConstraints", Ty::Obj(&MATCH_CONSTRAINTS)),
    f("matchConditions", NAMED_EXPRESSIONS),
    f("variables", NAMED_EXPRESSIONS),
    f("mutations", Ty::List(&Ty::Obj(&MUTATION_CEL))),
    f("failurePolicy", FAILURE_POLICY),
    f("reinvocationPolicy", Ty::Enum(&["Never", "IfNeeded"])),
    f("evaluation", Ty::Obj(&EVALUATION)),
    f("webhookConfiguration", Ty::Obj(&CEL_WEBHOOK_CONFIGURATION)),
    f("autogen", Ty::Obj(&AUTOGEN)),
    f("targetMatchConstraints", Ty::Obj(&MATCH_CONSTRAINTS)),
    f("targetMatchConditions", NAMED_EXPRESSIONS),
]);

static GENERATE_TEMPLATE: Obj = obj(&[
    f("value", Ty::Any),
    f("interpolate", Ty::Enum(&["none", "cel"])),
]);

static GENERATOR: Obj = Obj {
    fields: &[
        f("expression", Ty::Str),
        f("template", Ty::Obj(&GENERATE_TEMPLATE)),
    ],
    open: false,
    exclusive: &[&["expression", "template"]],
};

pub static GPOL_SPEC: Obj = obj(&[
    f("matchConstraints", Ty::Obj(&MATCH_CONSTRAINTS)),
    f("matchConditions", NAMED_EXPRESSIONS),
    f("variables", NAMED_EXPRESSIONS),
    f("generate", Ty::List(&Ty::Obj(&GENERATOR))),
    f("evaluation", Ty::Obj(&EVALUATION)),
    f("webhookConfiguration", Ty::Obj(&CEL_WEBHOOK_CONFIGURATION)),
    f("useServerSideApply", Ty::Bool),
]);

pub static DPOL_SPEC: Obj = obj(&[
    f("matchConstraints", Ty::Obj(&MATCH_CONSTRAINTS)),
    f("conditions", NAMED_EXPRESSIONS),
    f("variables", NAMED_EXPRESSIONS),
    req("schedule", Ty::Str),
    f(
        "deletionPropagationPolicy",
        Ty::Enum(&["Foreground", "Background", "Orphan"]),
    ),
]);

static POLICY_REF: Obj = obj(&[req("name", Ty::Str), req("kind", Ty::Str)]);

pub static CEL_EXCEPTION_SPEC: Obj = obj(&[
    req("policyRefs", Ty::List(&Ty::Obj(&POLICY_REF))),
    f("matchConditions", NAMED_EXPRESSIONS),
    f("images", STRS),
    f("allowedValues", STRS),
    f("reportResult", Ty::Enum(&["skip", "pass"])),
    f("expiresAt", Ty::Str),
]);
