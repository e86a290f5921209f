//! `validate.podSecurity`: the Pod Security Standards level, version and exclusions of a rule,
//! checked and parsed once at lowering so evaluation never parses a version or a control name.
//!
//! The checks themselves live in the runtime (`palisade_runtime::podsecurity`); this module only
//! knows the names Kyverno accepts in a policy and which controls are pod-level or
//! container-level, because those decide whether an exclusion is valid.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pattern::LowerError;

/// A Pod Security Standards level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A policy version: `v1.<minor>`, or the newest variant of every check (`latest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Version {
    Minor(u32),
    Latest,
}

/// The lowered `podSecurity` block.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PodSecurity {
    pub level: Level,
    pub version: Version,
    /// The version as the policy wrote it (`latest`, `v1.29`, or empty); Kyverno's failure
    /// message quotes it unchanged.
    pub version_text: String,
    pub exclude: Vec<Exclude>,
}

/// One `exclude` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Exclude {
    /// The control name as the Pod Security Standards page spells it (`Capabilities`).
    pub control_name: String,
    /// Image wildcards; empty for a pod-level exclusion.
    pub images: Vec<String>,
    /// A restricted field with `[*]` for indexes (`spec.containers[*].securityContext.privileged`);
    /// empty excludes every field of the control.
    pub restricted_field: String,
    /// Wildcards every offending value must match; empty accepts any value.
    pub values: Vec<String>,
}

/// Control names Kyverno accepts, with the check ids they stand for. Two controls cover a
/// baseline and a restricted check each.
pub const CONTROLS: &[(&str, &[&str])] = &[
    ("Capabilities", &["capabilities_baseline", "capabilities_restricted"]),
    ("Seccomp", &["seccompProfile_baseline", "seccompProfile_restricted"]),
    ("Privileged Containers", &["privileged"]),
    ("Host Ports", &["hostPorts"]),
    ("/proc Mount Type", &["procMount"]),
    ("Host Probes / Lifecycle Hooks", &["hostProbesAndHostLifecycle"]),
    ("HostProcess", &["windowsHostProcess"]),
    ("SELinux", &["seLinuxOptions"]),
    ("Host Namespaces", &["hostNamespaces"]),
    ("HostPath Volumes", &["hostPathVolumes"]),
    ("Sysctls", &["sysctls"]),
    ("AppArmor", &["appArmorProfile"]),
    ("Privilege Escalation", &["allowPrivilegeEscalation"]),
    ("Running as Non-root", &["runAsNonRoot"]),
    ("Running as Non-root user", &["runAsUser"]),
    ("Volume Types", &["restrictedVolumes"]),
];

/// Controls that only concern pod fields: an exclusion of one must not name images.
const POD_LEVEL: &[&str] = &["Host Namespaces", "HostPath Volumes", "Sysctls", "Volume Types"];

/// Controls that only concern container fields: an exclusion of one must name images.
const CONTAINER_LEVEL: &[&str] =
    &["Capabilities", "Privileged Containers", "Host Ports", "/proc Mount Type", "Privilege Escalation", "Host Probes / Lifecycle Hooks"];

/// The check ids a control name stands for (empty for an unknown name).
pub fn check_ids(control_name: &str) -> &'static [&'static str] {
    CONTROLS.iter().find(|(n, _)| *n == control_name).map(|(_, ids)| *ids).unwrap_or_default()
}

/// Parses `latest` (or an empty version, which Kyverno reads as latest) and `v1.<minor>`, the
/// forms Kubernetes' `api.ParseVersion` accepts.
pub fn parse_version(text: &str) -> Result<Version, String> {
    if text.is_empty() || text == "latest" {
        return Ok(Version::Latest);
    }
    let minor = text.strip_prefix("v1.").filter(|m| !m.is_empty() && m.len() <= 4 && m.bytes().all(|b| b.is_ascii_digit()));
    match minor.and_then(|m| if m.len() > 1 && m.starts_with('0') { None } else { m.parse::<u32>().ok() }) {
        Some(m) => Ok(Version::Minor(m)),
        None => Err(format!("podSecurity.version: `{text}` is not a Pod Security Standards version; use `latest` or `v1.<minor>` such as `v1.29`")),
    }
}

/// Lowers a `podSecurity` block.
pub fn lower(v: &Value) -> Result<PodSecurity, LowerError> {
    let level = match v.get("level").and_then(Value::as_str) {
        Some("privileged") => Level::Privileged,
        Some("baseline") => Level::Baseline,
        Some("restricted") => Level::Restricted,
        Some(other) => {
            return Err(LowerError(format!("podSecurity.level: `{other}` is not a level; use `privileged`, `baseline` or `restricted`")));
        }
        None => return Err(LowerError("podSecurity.level is required: `privileged`, `baseline` or `restricted`".into())),
    };
    let version_text = v.get("version").and_then(Value::as_str).unwrap_or_default().to_owned();
    let version = parse_version(&version_text).map_err(LowerError)?;
    let mut exclude = Vec::new();
    for (i, e) in v.get("exclude").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
        exclude.push(lower_exclude(i, e)?);
    }
    Ok(PodSecurity { level, version, version_text, exclude })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

fn lower_exclude(i: usize, e: &Value) -> Result<Exclude, LowerError> {
    let control_name = e.get("controlName").and_then(Value::as_str).unwrap_or_default().to_owned();
    if check_ids(&control_name).is_empty() {
        let known: Vec<&str> = CONTROLS.iter().map(|(n, _)| *n).collect();
        return Err(LowerError(format!(
            "podSecurity.exclude[{i}].controlName: `{control_name}` is not a Pod Security Standards control; use one of: {}",
            known.join(", ")
        )));
    }
    let images = strings(e.get("images"));
    if CONTAINER_LEVEL.contains(&control_name.as_str()) && images.is_empty() {
        return Err(LowerError(format!(
            "podSecurity.exclude[{i}]: `{control_name}` is a container-level control, so the exclusion needs `images` (wildcards such as `nginx*`)"
        )));
    }
    if POD_LEVEL.contains(&control_name.as_str()) && !images.is_empty() {
        return Err(LowerError(format!("podSecurity.exclude[{i}]: `{control_name}` is a pod-level control, so the exclusion must not list `images`")));
    }
    Ok(Exclude {
        control_name,
        images,
        restricted_field: e.get("restrictedField").and_then(Value::as_str).unwrap_or_default().to_owned(),
        values: strings(e.get("values")),
    })
}
