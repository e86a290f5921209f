//! The Pod Security Standards checks, as Kubernetes' `k8s.io/pod-security-admission/policy`
//! package defines them, with the field errors Kyverno asks that package for.
//!
//! [`CHECKS`] is the table: one entry per check id with its level and its variants, each
//! variant starting at a minimum Kubernetes minor version. The entries are in the order the
//! Kubernetes package registers them (its source files sorted by name), because that is the
//! order in which Kyverno reports failed checks. Every variant is a plain function of the JSON
//! Pod metadata and spec, read through [`Node`] (a `Value` or a node of the request tape); JSON
//! values of an unexpected type count as absent, as a typed decode with defaults would read them.

use std::collections::BTreeSet;

use palisade_compiler::ir::podsecurity::Level;

use super::node::{List, Node};

/// The container lists of a pod in the order of Kubernetes' visitor (init containers,
/// containers, then ephemeral containers), which is the order of the field errors.
pub const CONTAINER_KINDS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// One container list of a [`Pod`]: the list of the spec itself, or the containers an exclusion
/// picked out of it (borrowed, so the reduced pod of an exclusion copies no container).
#[derive(Clone, Copy, Debug)]
pub enum Containers<'a> {
    List(List<'a>),
    Picked(&'a [Node<'a>]),
}

impl<'a> Containers<'a> {
    pub const EMPTY: Containers<'static> = Containers::List(List::Json(&[]));

    pub fn len(self) -> usize {
        match self {
            Containers::List(l) => l.len(),
            Containers::Picked(p) => p.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn get(self, index: usize) -> Option<Node<'a>> {
        match self {
            Containers::List(l) => l.get(index),
            Containers::Picked(p) => p.get(index).copied(),
        }
    }

    pub fn iter(self) -> impl Iterator<Item = Node<'a>> {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
}

/// The pod the checks read: its metadata, its spec for pod-level fields, and its three container
/// lists, which the checks read only through [`Pod::containers`]. Keeping the lists apart lets
/// an exclusion evaluate a reduced pod (other containers, or no pod-level fields) as a view of
/// the original, without building a new JSON document.
#[derive(Clone, Copy, Debug)]
pub struct Pod<'a> {
    pub meta: Node<'a>,
    pub spec: Node<'a>,
    /// In the order of [`CONTAINER_KINDS`].
    pub lists: [Containers<'a>; 3],
}

impl<'a> Pod<'a> {
    /// The pod of a metadata and a spec, with the spec's own container lists.
    pub fn new(meta: Node<'a>, spec: Node<'a>) -> Pod<'a> {
        Pod { meta, spec, lists: CONTAINER_KINDS.map(|kind| Containers::List(list(spec, &[kind]))) }
    }

    /// The container list named `kind` (empty for a name that is not a container list).
    pub fn list(&self, kind: &str) -> Containers<'a> {
        CONTAINER_KINDS.iter().position(|k| *k == kind).and_then(|i| self.lists.get(i).copied()).unwrap_or(Containers::EMPTY)
    }

    /// Every container with its field path, in the visitor's order.
    pub fn containers(&self) -> ContainerIter<'a> {
        ContainerIter { lists: self.lists, list: 0, index: 0 }
    }
}

/// The iterator of [`Pod::containers`]: a list and an index into it. Most checks walk every
/// container, so this is a plain loop rather than a chain of iterator adapters (which cost
/// a quarter of the checks' time on a one-container pod).
pub struct ContainerIter<'a> {
    lists: [Containers<'a>; 3],
    list: usize,
    index: usize,
}

impl<'a> Iterator for ContainerIter<'a> {
    type Item = (ContainerPath, Node<'a>);

    fn next(&mut self) -> Option<(ContainerPath, Node<'a>)> {
        loop {
            let (list, kind) = (self.lists.get(self.list)?, CONTAINER_KINDS.get(self.list)?);
            if let Some(c) = list.get(self.index) {
                let path = ContainerPath { kind, index: self.index };
                self.index += 1;
                return Some((path, c));
            }
            self.list += 1;
            self.index = 0;
        }
    }
}

/// The field path of a container, `spec.containers[0]`; written out only for a field error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerPath {
    pub kind: &'static str,
    pub index: usize,
}

impl std::fmt::Display for ContainerPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spec.{}[{}]", self.kind, self.index)
    }
}

/// The value a field error carries, rendered like Go's `%+v` of the original value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadValue {
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
}

impl BadValue {
    fn none() -> BadValue {
        BadValue::Str(String::new())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Forbidden,
    Required,
}

/// One field error, as Kubernetes' `field.Error`: the field path uses `[i]` for list indexes
/// and `[key]` for map keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub kind: ErrorKind,
    pub field: String,
    pub bad: BadValue,
}

fn forbidden(field: String, bad: BadValue) -> FieldError {
    FieldError { kind: ErrorKind::Forbidden, field, bad }
}

fn required(field: String) -> FieldError {
    FieldError { kind: ErrorKind::Required, field, bad: BadValue::none() }
}

/// A check that forbade the pod: Kubernetes' `CheckResult` with `Allowed: false`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub reason: String,
    pub detail: String,
    pub errs: Vec<FieldError>,
}

/// A check variant: `None` when the pod is allowed. A check that allows the pod allocates
/// nothing: paths, names and messages are built only for what fails.
pub type CheckFn = fn(&Pod<'_>) -> Option<Failure>;

/// One check of the table.
pub struct CheckDef {
    pub id: &'static str,
    pub level: Level,
    /// `(minimum minor version of Kubernetes 1.x, variant)`, oldest first.
    pub versions: &'static [(u32, CheckFn)],
}

impl CheckDef {
    /// The variant that applies to `minor` (`None` for latest): the newest one whose minimum
    /// version is not after it, or nothing when the check did not exist yet.
    pub fn variant(&self, minor: Option<u32>) -> Option<CheckFn> {
        self.versions.iter().rev().find(|(min, _)| minor.is_none_or(|m| *min <= m)).map(|(_, f)| *f)
    }
}

pub static CHECKS: &[CheckDef] = &[
    CheckDef { id: "allowPrivilegeEscalation", level: Level::Restricted, versions: &[(8, allow_privilege_escalation_1_8), (25, allow_privilege_escalation_1_25)] },
    CheckDef { id: "appArmorProfile", level: Level::Baseline, versions: &[(0, app_armor_profile_1_0)] },
    CheckDef { id: "capabilities_baseline", level: Level::Baseline, versions: &[(0, capabilities_baseline_1_0)] },
    CheckDef { id: "capabilities_restricted", level: Level::Restricted, versions: &[(22, capabilities_restricted_1_22), (25, capabilities_restricted_1_25)] },
    CheckDef { id: "hostNamespaces", level: Level::Baseline, versions: &[(0, host_namespaces_1_0)] },
    CheckDef { id: "hostPathVolumes", level: Level::Baseline, versions: &[(0, host_path_volumes_1_0)] },
    CheckDef { id: "hostPorts", level: Level::Baseline, versions: &[(0, host_ports_1_0)] },
    CheckDef { id: "hostProbesAndHostLifecycle", level: Level::Baseline, versions: &[(34, host_probes_and_lifecycle_1_34)] },
    CheckDef { id: "privileged", level: Level::Baseline, versions: &[(0, privileged_1_0)] },
    CheckDef { id: "procMount", level: Level::Baseline, versions: &[(0, proc_mount_1_0)] },
    CheckDef { id: "restrictedVolumes", level: Level::Restricted, versions: &[(0, restricted_volumes_1_0)] },
    CheckDef { id: "runAsNonRoot", level: Level::Restricted, versions: &[(0, run_as_non_root_1_0)] },
    CheckDef { id: "runAsUser", level: Level::Restricted, versions: &[(23, run_as_user_1_23)] },
    CheckDef { id: "seLinuxOptions", level: Level::Baseline, versions: &[(0, se_linux_options_1_0), (31, se_linux_options_1_31)] },
    CheckDef { id: "seccompProfile_baseline", level: Level::Baseline, versions: &[(0, seccomp_baseline_1_0), (19, seccomp_baseline_1_19)] },
    CheckDef { id: "seccompProfile_restricted", level: Level::Restricted, versions: &[(19, seccomp_restricted_1_19), (25, seccomp_restricted_1_25)] },
    CheckDef { id: "sysctls", level: Level::Baseline, versions: &[(0, sysctls_1_0), (27, sysctls_1_27), (29, sysctls_1_29), (32, sysctls_1_32)] },
    CheckDef { id: "windowsHostProcess", level: Level::Baseline, versions: &[(0, windows_host_process_1_0)] },
];

// ---- helpers -------------------------------------------------------------------------------

/// The value at `path`, `None` when a step is missing or the value is null.
fn at<'a>(v: Node<'a>, path: &[&str]) -> Option<Node<'a>> {
    path.iter().try_fold(v, |cur, key| cur.get(key)).filter(|v| !v.is_null())
}

fn is_true(v: Node<'_>, path: &[&str]) -> bool {
    at(v, path).and_then(Node::as_bool) == Some(true)
}

fn str_at<'a>(v: Node<'a>, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Node::as_str)
}

fn list<'a>(v: Node<'a>, path: &[&str]) -> List<'a> {
    at(v, path).map_or(List::Json(&[]), Node::elements)
}

/// The strings of a list of strings, other items skipped, without copying them.
fn strs<'a>(v: Node<'a>, path: &[&str]) -> impl Iterator<Item = &'a str> {
    list(v, path).iter().filter_map(Node::as_str)
}

fn name(c: Node<'_>) -> String {
    str_at(c, &["name"]).unwrap_or_default().to_owned()
}

fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

fn pluralize<'a>(singular: &'a str, plural: &'a str, count: usize) -> &'a str {
    if count == 1 { singular } else { plural }
}

/// `container "a"` or `containers "a", "b"`.
fn containers_phrase<S: AsRef<str>>(names: &[S]) -> String {
    format!("{} {}", pluralize("container", "containers", names.len()), join_quote(names))
}

/// Go's `%q` for the plain strings annotations hold.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Kubernetes' `Violations`: what was found (for the detail) and the field errors.
#[derive(Default)]
struct Violations {
    data: Vec<String>,
    errs: Vec<FieldError>,
}

impl Violations {
    fn add(&mut self, data: String, errs: impl IntoIterator<Item = FieldError>) {
        self.data.push(data);
        self.errs.extend(errs);
    }
}

fn fail(reason: impl Into<String>, detail: String, errs: Vec<FieldError>) -> Option<Failure> {
    Some(Failure { reason: reason.into(), detail, errs })
}

fn is_windows(spec: Node<'_>) -> bool {
    str_at(spec, &["os", "name"]) == Some("windows")
}

// ---- baseline ------------------------------------------------------------------------------

fn host_namespaces_1_0(pod: &Pod<'_>) -> Option<Failure> {
    let mut v = Violations::default();
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if is_true(pod.spec, &[key]) {
            v.add(format!("{key}=true"), [forbidden(format!("spec.{key}"), BadValue::Bool(true))]);
        }
    }
    if v.data.is_empty() {
        return None;
    }
    fail("host namespaces", v.data.join(", "), v.errs)
}

fn privileged_1_0(pod: &Pod<'_>) -> Option<Failure> {
    let mut v = Violations::default();
    for (path, c) in pod.containers() {
        if is_true(c, &["securityContext", "privileged"]) {
            v.add(name(c), [forbidden(format!("{path}.securityContext.privileged"), BadValue::Bool(true))]);
        }
    }
    if v.data.is_empty() {
        return None;
    }
    fail("privileged", format!("{} must not set securityContext.privileged=true", containers_phrase(&v.data)), v.errs)
}

const CAPABILITIES_BASELINE: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities_baseline_1_0(pod: &Pod<'_>) -> Option<Failure> {
    let mut v = Violations::default();
    let mut all = BTreeSet::new();
    for (path, c) in pod.containers() {
        let mut added = strs(c, &["securityContext", "capabilities", "add"]).filter(|cap| !CAPABILITIES_BASELINE.contains(cap)).peekable();
        if added.peek().is_some() {
            let added: BTreeSet<String> = added.map(str::to_owned).collect();
            all.extend(added.iter().cloned());
            v.add(name(c), [forbidden(format!("{path}.securityContext.capabilities.add"), BadValue::List(added.into_iter().collect()))]);
        }
    }
    if v.data.is_empty() {
        return None;
    }
    let all: Vec<String> = all.into_iter().collect();
    let detail = format!("{} must not include {} in securityContext.capabilities.add", containers_phrase(&v.data), join_quote(&all));
    fail("non-default capabilities", detail, v.errs)
}

fn host_path_volumes_1_0(pod: &Pod<'_>) -> Option<Failure> {
    let mut v = Violations::default();
    for (i, vol) in list(pod.spec, &["volumes"]).iter().enumerate() {
        if at(vol, &["hostPath"]).is_some() {
            v.add(name(vol), [forbidden(format!("spec.volumes[{i}].hostPath"), BadValue::none())]);
        }
    }
    if v.data.is_empty() {
        return None;
    }
    fail("hostPath volumes", format!("{} {}", pluralize("volume", "volumes", v.data.len()), join_quote(&v.data)), v.errs)
}

fn host_ports_1_0(pod: &Pod<'_>) -> Option<Failure> {
    let mut v = Violations::default();
    let mut ports = BTreeSet::new();
    for (path, c) in pod.containers() {
        let mut errs = Vec::new();
        for (i, p) in list(c, &["ports"]).iter().enumerate() {
            let port = at(p, &["hostPort"]).and_then(Node::as_i64).unwrap_or(0);
            if port != 0 {
                ports.insert(port.to_string());
                errs.push(forbidden(format!("{path}.ports[{i}].hostPort"), BadValue::Int(port)));
            }
        }
        if !errs.is_empty() {
            v.add(name(c), errs);
        }
    }
    if v.data.is_empty() {
        return None;
    }
    // Kubernetes sorts the ports as strings (a string set), so 10000 sorts before 8080.
    let ports: Vec<String> = ports.into_iter().collect();
    let detail = format!(
        "{} {} {} {}",
        containers_phrase(&v.data),
        pluralize("uses", "use", v.data.len()),
        pluralize("hostPort", "hostPorts", ports.len()),
        ports.join(", ")
    );
    fail("hostPort", detail, v.errs)
}

fn host_probes_and_lifecycle_1_34(pod: &Pod<'_>) -> Option<Failure> {
    let mut bad_containers = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    let mut errs = Vec::new();
    for (path, c) in pod.containers() {
        let handlers: [(&str, &[&str]); 5] = [
            ("livenessProbe", &["livenessProbe"]),
            ("readinessProbe", &["readinessProbe"]),
            ("startupProbe", &["startupProbe"]),
            ("lifecycle.postStart", &["lifecycle", "postStart"]),
            ("lifecycle.preStop", &["lifecycle", "preStop"]),
        ];
        for (handler, keys) in handlers {
            let Some(h) = at(c, keys) else { continue };
            for action in ["httpGet", "tcpSocket"] {
                if let Some(host) = str_at(h, &[action, "host"]).filter(|s| !s.is_empty()) {
                    bad_containers.insert(name(c));
                    hosts.insert(host.to_owned());
                    errs.push(forbidden(format!("{path}.{handler}.{action}.host"), BadValue::Str(host.to_owned())));
                }
            }
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let names: Vec<String> = bad_containers.into_iter().collect();
    let hosts: Vec<String> = hosts.into_iter().collect();
    let detail = format!(
        "{} {} {} {}",
        containers_phrase(&names),
        pluralize("uses", "use", names.len()),
        pluralize("probe or lifecycle host", "probe or lifecycle hosts", hosts.len()),
        join_quote(&hosts)
    );
    fail("probe or lifecycle host", detail, errs)
}

fn app_armor_profile_1_0(pod: &Pod<'_>) -> Option<Failure> {
    fn allowed_type(t: &str) -> bool {
        t == "RuntimeDefault" || t == "Localhost"
    }
    let mut setters = Violations::default();
    let mut bad_values = BTreeSet::new();
    if let Some(profile) = at(pod.spec, &["securityContext", "appArmorProfile"]) {
        let t = str_at(profile, &["type"]).unwrap_or_default();
        if !allowed_type(t) {
            setters.add("pod".into(), [forbidden("spec.securityContext.appArmorProfile.type".into(), BadValue::Str(t.into()))]);
            bad_values.insert(t.to_owned());
        }
    }
    let mut bad = Vec::new();
    let mut errs = Vec::new();
    for (path, c) in pod.containers() {
        if let Some(profile) = at(c, &["securityContext", "appArmorProfile"]) {
            let t = str_at(profile, &["type"]).unwrap_or_default();
            if !allowed_type(t) {
                bad.push(name(c));
                errs.push(forbidden(format!("{path}.securityContext.appArmorProfile.type"), BadValue::Str(t.into())));
                bad_values.insert(t.to_owned());
            }
        }
    }
    if !bad.is_empty() {
        setters.add(containers_phrase(&bad), errs);
    }
    let mut annotations = Vec::new();
    let mut annotation_errs = Vec::new();
    for (k, v) in at(pod.meta, &["annotations"]).into_iter().flat_map(Node::entries) {
        let v = v.as_str().unwrap_or_default();
        let allowed = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") && !allowed {
            annotations.push(format!("{k}={}", go_quote(v)));
            annotation_errs.push(forbidden(format!("metadata.annotations[{k}]"), BadValue::Str(v.into())));
        }
    }
    if setters.data.is_empty() && annotations.is_empty() {
        return None;
    }
    let mut values: Vec<String> = bad_values.into_iter().collect();
    if !annotations.is_empty() {
        annotations.sort();
        let word = pluralize("annotation", "annotations", annotations.len()).to_owned();
        values.extend(annotations);
        setters.add(word, annotation_errs);
    }
    let reason = pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", values.len());
    let detail = format!("{} must not set AppArmor profile type to {}", setters.data.join(" and "), join_quote(&values));
    fail(reason, detail, setters.errs)
}

fn se_linux_options(pod: &Pod<'_>, allowed_types: &[&str]) -> Option<Failure> {
    #[derive(Default)]
    struct Found {
        types: BTreeSet<String>,
        user: bool,
        role: bool,
    }
    // Checks one `seLinuxOptions` block; `prefix` is the path of the pod or container that holds
    // its security context, written out only for a field error.
    fn check(opts: Node<'_>, prefix: &dyn std::fmt::Display, allowed_types: &[&str], found: &mut Found, errs: &mut Vec<FieldError>) -> bool {
        let mut valid = true;
        let t = str_at(opts, &["type"]).unwrap_or_default();
        if !allowed_types.contains(&t) {
            valid = false;
            found.types.insert(t.to_owned());
            errs.push(forbidden(format!("{prefix}.securityContext.seLinuxOptions.type"), BadValue::Str(t.into())));
        }
        for (key, flag) in [("user", &mut found.user), ("role", &mut found.role)] {
            let v = str_at(opts, &[key]).unwrap_or_default();
            if !v.is_empty() {
                valid = false;
                *flag = true;
                errs.push(forbidden(format!("{prefix}.securityContext.seLinuxOptions.{key}"), BadValue::Str(v.into())));
            }
        }
        valid
    }
    let mut found = Found::default();
    let mut setters = Violations::default();
    if let Some(opts) = at(pod.spec, &["securityContext", "seLinuxOptions"]) {
        let mut errs = Vec::new();
        if !check(opts, &"spec", allowed_types, &mut found, &mut errs) {
            setters.add("pod".into(), errs);
        }
    }
    let mut bad = Vec::new();
    let mut errs = Vec::new();
    for (path, c) in pod.containers() {
        if let Some(opts) = at(c, &["securityContext", "seLinuxOptions"])
            && !check(opts, &path, allowed_types, &mut found, &mut errs)
        {
            bad.push(name(c));
        }
    }
    if !bad.is_empty() {
        setters.add(containers_phrase(&bad), errs);
    }
    if setters.data.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    if !found.types.is_empty() {
        let types: Vec<String> = found.types.into_iter().collect();
        what.push(format!("{} {}", pluralize("type", "types", types.len()), join_quote(&types)));
    }
    if found.user {
        what.push("user may not be set".to_owned());
    }
    if found.role {
        what.push("role may not be set".to_owned());
    }
    let detail = format!("{} set forbidden securityContext.seLinuxOptions: {}", setters.data.join(" and "), what.join("; "));
    fail("seLinuxOptions", detail, setters.errs)
}

fn se_linux_options_1_0(pod: &Pod<'_>) -> Option<Failure> {
    se_linux_options(pod, &["", "container_t", "container_init_t", "container_kvm_t"])
}

fn se_linux_options_1_31(pod: &Pod<'_>) -> Option<Failure> {
    se_linux_options(pod, &["", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"])
}

fn proc_mount_1_0(pod: &Pod<'_>) -> Option<Failure> {
    let mut v = Violations::default();
    let mut types = BTreeSet::new();
    for (path, c) in pod.containers() {
        if let Some(pm) = at(c, &["securityContext", "procMount"]) {
            let pm = pm.as_str().unwrap_or_default();
            if pm != "Default" {
                types.insert(pm.to_owned());
                v.add(name(c), [forbidden(format!("{path}.securityContext.procMount"), BadValue::Str(pm.into()))]);
            }
        }
    }
    if v.data.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    fail("procMount", format!("{} must not set securityContext.procMount to {}", containers_phrase(&v.data), join_quote(&types)), v.errs)
}

fn valid_seccomp(t: &str) -> bool {
    t == "RuntimeDefault" || t == "Localhost"
}

/// The pod and the containers that set `seccompProfile.type` to a value other than
/// `RuntimeDefault` or `Localhost`, with the values; for the baseline and restricted checks.
fn seccomp_explicit(spec: Node<'_>, setters: &mut Violations, values: &mut BTreeSet<String>) -> bool {
    let mut pod_valid = false;
    if let Some(profile) = at(spec, &["securityContext", "seccompProfile"]) {
        let t = str_at(profile, &["type"]).unwrap_or_default();
        if valid_seccomp(t) {
            pod_valid = true;
        } else {
            setters.add("pod".into(), [forbidden("spec.securityContext.seccompProfile.type".into(), BadValue::Str(t.into()))]);
            values.insert(t.to_owned());
        }
    }
    pod_valid
}

fn seccomp_baseline_1_0(pod: &Pod<'_>) -> Option<Failure> {
    fn valid_annotation(v: &str) -> bool {
        v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
    }
    const CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";
    const POD_KEY: &str = "seccomp.security.alpha.kubernetes.io/pod";
    let annotations = at(pod.meta, &["annotations"]).filter(|a| a.is_object())?;
    let mut found: Vec<(String, FieldError)> = Vec::new();
    let mut check = |key: &str, v: Node<'_>| {
        let v = v.as_str().unwrap_or_default();
        if !valid_annotation(v) {
            let err = forbidden(format!("metadata.annotations[{key}]"), BadValue::Str(v.into()));
            found.push((format!("{key}={}", go_quote(v)), err));
        }
    };
    if let Some(v) = annotations.get(POD_KEY) {
        check(POD_KEY, v);
    }
    // The annotation of a container is found by its name without building the key, so a pod
    // without such annotations costs no allocation.
    if annotations.entries().any(|(k, _)| k.starts_with(CONTAINER_PREFIX)) {
        for (_, c) in pod.containers() {
            let name = str_at(c, &["name"]).unwrap_or_default();
            if let Some((key, v)) = annotations.entries().find(|(k, _)| k.strip_prefix(CONTAINER_PREFIX) == Some(name)) {
                check(key, v);
            }
        }
    }
    if found.is_empty() {
        return None;
    }
    // Kubernetes groups these by value in a map; the detail is sorted and so are the errors here.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    let detail = format!(
        "forbidden {} {}",
        pluralize("annotation", "annotations", found.len()),
        found.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>().join(", ")
    );
    fail("seccompProfile", detail, found.into_iter().map(|(_, e)| e).collect())
}

fn seccomp_baseline_1_19(pod: &Pod<'_>) -> Option<Failure> {
    let mut setters = Violations::default();
    let mut values = BTreeSet::new();
    seccomp_explicit(pod.spec, &mut setters, &mut values);
    let mut bad = Vec::new();
    let mut errs = Vec::new();
    for (path, c) in pod.containers() {
        if let Some(profile) = at(c, &["securityContext", "seccompProfile"]) {
            let t = str_at(profile, &["type"]).unwrap_or_default();
            if !valid_seccomp(t) {
                bad.push(name(c));
                errs.push(forbidden(format!("{path}.securityContext.seccompProfile.type"), BadValue::Str(t.into())));
                values.insert(t.to_owned());
            }
        }
    }
    if !bad.is_empty() {
        setters.add(containers_phrase(&bad), errs);
    }
    if setters.data.is_empty() {
        return None;
    }
    let values: Vec<String> = values.into_iter().collect();
    let detail = format!("{} must not set securityContext.seccompProfile.type to {}", setters.data.join(" and "), join_quote(&values));
    fail("seccompProfile", detail, setters.errs)
}

fn sysctls(spec: Node<'_>, allowed: &[&str]) -> Option<Failure> {
    let mut v = Violations::default();
    for (i, s) in list(spec, &["securityContext", "sysctls"]).iter().enumerate() {
        let n = str_at(s, &["name"]).unwrap_or_default();
        if !allowed.contains(&n) {
            v.add(n.to_owned(), [forbidden(format!("spec.securityContext.sysctls[{i}].name"), BadValue::Str(n.into()))]);
        }
    }
    if v.data.is_empty() {
        return None;
    }
    fail("forbidden sysctls", v.data.join(", "), v.errs)
}

const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
];
const SYSCTLS_1_29: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

fn sysctls_1_0(pod: &Pod<'_>) -> Option<Failure> {
    sysctls(pod.spec, SYSCTLS_1_0)
}

fn sysctls_1_27(pod: &Pod<'_>) -> Option<Failure> {
    sysctls(pod.spec, SYSCTLS_1_27)
}

fn sysctls_1_29(pod: &Pod<'_>) -> Option<Failure> {
    sysctls(pod.spec, SYSCTLS_1_29)
}

fn sysctls_1_32(pod: &Pod<'_>) -> Option<Failure> {
    sysctls(pod.spec, SYSCTLS_1_32)
}

fn windows_host_process_1_0(pod: &Pod<'_>) -> Option<Failure> {
    let mut bad = Vec::new();
    let mut errs = Vec::new();
    for (path, c) in pod.containers() {
        if is_true(c, &["securityContext", "windowsOptions", "hostProcess"]) {
            bad.push(name(c));
            errs.push(forbidden(format!("{path}.securityContext.windowsOptions.hostProcess"), BadValue::Bool(true)));
        }
    }
    let mut setters = Violations::default();
    if is_true(pod.spec, &["securityContext", "windowsOptions", "hostProcess"]) {
        setters.add("pod".into(), [forbidden("spec.securityContext.windowsOptions.hostProcess".into(), BadValue::Bool(true))]);
    }
    if !bad.is_empty() {
        setters.add(containers_phrase(&bad), errs);
    }
    if setters.data.is_empty() {
        return None;
    }
    fail("hostProcess", format!("{} must not set securityContext.windowsOptions.hostProcess=true", setters.data.join(" and ")), setters.errs)
}

// ---- restricted ----------------------------------------------------------------------------

fn allow_privilege_escalation_1_8(pod: &Pod<'_>) -> Option<Failure> {
    let mut v = Violations::default();
    for (path, c) in pod.containers() {
        let field = || format!("{path}.securityContext.allowPrivilegeEscalation");
        match at(c, &["securityContext", "allowPrivilegeEscalation"]).and_then(Node::as_bool) {
            Some(false) => {}
            // Kyverno's fork reports an unset field with the text `nil` as its value.
            None => v.add(name(c), [forbidden(field(), BadValue::Str("nil".into()))]),
            Some(true) => v.add(name(c), [forbidden(field(), BadValue::Bool(true))]),
        }
    }
    if v.data.is_empty() {
        return None;
    }
    fail("allowPrivilegeEscalation != false", format!("{} must set securityContext.allowPrivilegeEscalation=false", containers_phrase(&v.data)), v.errs)
}

/// From 1.25, Windows pods (`spec.os.name: windows`) are exempt: the field does not exist there.
fn allow_privilege_escalation_1_25(pod: &Pod<'_>) -> Option<Failure> {
    if is_windows(pod.spec) { None } else { allow_privilege_escalation_1_8(pod) }
}

fn capabilities_restricted_1_22(pod: &Pod<'_>) -> Option<Failure> {
    let mut missing_drop = Violations::default();
    let mut adding = Violations::default();
    let mut forbidden_caps = BTreeSet::new();
    for (path, c) in pod.containers() {
        let Some(caps) = at(c, &["securityContext", "capabilities"]) else {
            missing_drop.add(name(c), [required(format!("{path}.securityContext.capabilities.drop"))]);
            continue;
        };
        let drop = || strs(caps, &["drop"]);
        if !drop().any(|d| d == "ALL") {
            let field = format!("{path}.securityContext.capabilities.drop");
            if drop().next().is_none() {
                missing_drop.add(name(c), [required(field)]);
            } else {
                let set: BTreeSet<&str> = drop().collect();
                missing_drop.add(name(c), [forbidden(field, BadValue::List(set.into_iter().map(str::to_owned).collect()))]);
            }
        }
        let mut added = strs(caps, &["add"]).filter(|a| *a != "NET_BIND_SERVICE").peekable();
        if added.peek().is_some() {
            let added: BTreeSet<String> = added.map(str::to_owned).collect();
            forbidden_caps.extend(added.iter().cloned());
            adding.add(name(c), [forbidden(format!("{path}.securityContext.capabilities.add"), BadValue::List(added.into_iter().collect()))]);
        }
    }
    let mut details = Vec::new();
    if !missing_drop.data.is_empty() {
        details.push(format!("{} must set securityContext.capabilities.drop=[\"ALL\"]", containers_phrase(&missing_drop.data)));
    }
    if !adding.data.is_empty() {
        let caps: Vec<String> = forbidden_caps.into_iter().collect();
        details.push(format!("{} must not include {} in securityContext.capabilities.add", containers_phrase(&adding.data), join_quote(&caps)));
    }
    if details.is_empty() {
        return None;
    }
    let mut errs = missing_drop.errs;
    errs.extend(adding.errs);
    fail("unrestricted capabilities", details.join("; "), errs)
}

fn capabilities_restricted_1_25(pod: &Pod<'_>) -> Option<Failure> {
    if is_windows(pod.spec) { None } else { capabilities_restricted_1_22(pod) }
}

const ALLOWED_VOLUME_TYPES: &[&str] = &["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

/// Volume sources the restricted level forbids, in the order Kubernetes tests them.
const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

fn restricted_volumes_1_0(pod: &Pod<'_>) -> Option<Failure> {
    let mut v = Violations::default();
    let mut types = BTreeSet::new();
    for (i, vol) in list(pod.spec, &["volumes"]).iter().enumerate() {
        if ALLOWED_VOLUME_TYPES.iter().any(|t| at(vol, &[t]).is_some()) {
            continue;
        }
        let t = RESTRICTED_VOLUME_TYPES.iter().find(|t| at(vol, &[t]).is_some()).copied().unwrap_or("unknown");
        types.insert(t);
        v.add(name(vol), [forbidden(format!("spec.volumes[{i}].{t}"), BadValue::none())]);
    }
    if v.data.is_empty() {
        return None;
    }
    let types: Vec<&str> = types.into_iter().collect();
    let detail = format!(
        "{} {} {} {} {}",
        pluralize("volume", "volumes", v.data.len()),
        join_quote(&v.data),
        pluralize("uses", "use", v.data.len()),
        pluralize("restricted volume type", "restricted volume types", types.len()),
        join_quote(&types)
    );
    fail("restricted volume types", detail, v.errs)
}

fn run_as_non_root_1_0(pod: &Pod<'_>) -> Option<Failure> {
    let mut setters = Violations::default();
    let mut pod_non_root = false;
    match at(pod.spec, &["securityContext", "runAsNonRoot"]).and_then(Node::as_bool) {
        Some(false) => setters.add("pod".into(), [forbidden("spec.securityContext.runAsNonRoot".into(), BadValue::Bool(false))]),
        Some(true) => pod_non_root = true,
        None => {}
    }
    let mut explicit = Vec::new();
    let mut explicit_errs = Vec::new();
    let mut implicit = Violations::default();
    for (path, c) in pod.containers() {
        let field = || format!("{path}.securityContext.runAsNonRoot");
        match at(c, &["securityContext", "runAsNonRoot"]).and_then(Node::as_bool) {
            Some(true) => {}
            Some(false) => {
                explicit.push(name(c));
                explicit_errs.push(forbidden(field(), BadValue::Bool(false)));
            }
            None if !pod_non_root => implicit.add(name(c), [required(field())]),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.add(containers_phrase(&explicit), explicit_errs);
    }
    if !setters.data.is_empty() {
        return fail("runAsNonRoot != true", format!("{} must not set securityContext.runAsNonRoot=false", setters.data.join(" and ")), setters.errs);
    }
    if !implicit.data.is_empty() {
        return fail("runAsNonRoot != true", format!("pod or {} must set securityContext.runAsNonRoot=true", containers_phrase(&implicit.data)), implicit.errs);
    }
    None
}

fn run_as_user_1_23(pod: &Pod<'_>) -> Option<Failure> {
    let mut setters = Violations::default();
    if at(pod.spec, &["securityContext", "runAsUser"]).and_then(Node::as_i64) == Some(0) {
        setters.add("pod".into(), [forbidden("spec.securityContext.runAsUser".into(), BadValue::Int(0))]);
    }
    let mut bad = Vec::new();
    let mut errs = Vec::new();
    for (path, c) in pod.containers() {
        if at(c, &["securityContext", "runAsUser"]).and_then(Node::as_i64) == Some(0) {
            bad.push(name(c));
            errs.push(forbidden(format!("{path}.securityContext.runAsUser"), BadValue::Int(0)));
        }
    }
    if !bad.is_empty() {
        setters.add(containers_phrase(&bad), errs);
    }
    if setters.data.is_empty() {
        return None;
    }
    fail("runAsUser=0", format!("{} must not set runAsUser=0", setters.data.join(" and ")), setters.errs)
}

fn seccomp_restricted_1_19(pod: &Pod<'_>) -> Option<Failure> {
    let mut setters = Violations::default();
    let mut values = BTreeSet::new();
    let pod_set = seccomp_explicit(pod.spec, &mut setters, &mut values);
    let mut explicit = Vec::new();
    let mut explicit_errs = Vec::new();
    let mut implicit = Violations::default();
    for (path, c) in pod.containers() {
        let field = || format!("{path}.securityContext.seccompProfile.type");
        if let Some(profile) = at(c, &["securityContext", "seccompProfile"]) {
            let t = str_at(profile, &["type"]).unwrap_or_default();
            if !valid_seccomp(t) {
                explicit.push(name(c));
                explicit_errs.push(forbidden(field(), BadValue::Str(t.into())));
                values.insert(t.to_owned());
            }
        } else if !pod_set {
            implicit.add(name(c), [required(field())]);
        }
    }
    if !explicit.is_empty() {
        setters.add(containers_phrase(&explicit), explicit_errs);
    }
    if !setters.data.is_empty() {
        let values: Vec<String> = values.into_iter().collect();
        let detail = format!("{} must not set securityContext.seccompProfile.type to {}", setters.data.join(" and "), join_quote(&values));
        return fail("seccompProfile", detail, setters.errs);
    }
    if !implicit.data.is_empty() {
        let detail =
            format!("pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"", containers_phrase(&implicit.data));
        return fail("seccompProfile", detail, implicit.errs);
    }
    None
}

fn seccomp_restricted_1_25(pod: &Pod<'_>) -> Option<Failure> {
    if is_windows(pod.spec) { None } else { seccomp_restricted_1_19(pod) }
}
