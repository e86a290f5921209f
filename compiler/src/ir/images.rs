//! Image verification IR: the `verifyImages` entries of a `kyverno.io/v1` rule, with Kyverno's
//! backward-compatibility conversion applied once at lowering time.
//!
//! The legacy `image`, `key`, `issuer`, `subject`, `roots` and `annotations` fields are turned
//! into `imageReferences` and an attestor set here, exactly as Kyverno's `Convert()` does, so the
//! runtime only ever sees one shape. Wildcards and regular expressions are compiled here; a
//! regular expression that does not compile is a lowering error naming the field.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use palisade_stdlib::wildcard::Wildcard;

use super::pattern::LowerError;

/// The whole `verifyImages` body of one rule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyImages {
    pub entries: Vec<ImageVerification>,
    /// `imageExtractors` of the rule: kind -> extractors; empty means the built-in ones.
    pub extractors: Vec<(String, Vec<ImageExtractor>)>,
}

/// Which signature format an entry verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifierType {
    Cosign,
    SigstoreBundle,
    Notary,
}

/// One `verifyImages[]` entry after conversion.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageVerification {
    pub verifier: VerifierType,
    pub image_references: Vec<Wildcard>,
    pub skip_image_references: Vec<Wildcard>,
    /// `failureAction` of this entry when set (`true` for Enforce).
    pub enforce: Option<bool>,
    /// A repository that holds the signatures instead of the image's own.
    pub repository: Option<String>,
    pub mutate_digest: bool,
    pub verify_digest: bool,
    pub required: bool,
    pub use_cache: bool,
    pub allow_insecure_registry: bool,
    pub attestors: Vec<AttestorSet>,
    pub attestations: Vec<Attestation>,
    /// Annotations the simple-signing payload must carry.
    pub annotations: BTreeMap<String, String>,
    /// A digest of everything that decides whether a signature is trusted (attestors, attestation
    /// types and their attestors, repository, annotations) but not of attestation conditions: the
    /// verification cache keys on it, and conditions are evaluated on every request.
    pub fingerprint: String,
}

/// `attestors[]`: `count` of `entries` must verify; `None` means all of them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttestorSet {
    pub count: Option<usize>,
    pub entries: Vec<Attestor>,
}

impl AttestorSet {
    /// How many entries must verify (Kyverno's `RequiredCount`).
    pub fn required_count(&self) -> usize {
        match self.count {
            Some(n) if n > 0 => n,
            _ => self.entries.len(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attestor {
    pub kind: AttestorKind,
    pub annotations: BTreeMap<String, String>,
    pub repository: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum AttestorKind {
    Keys(Keys),
    Certificates(Certificates),
    /// Boxed: the keyless identity (wildcards, regexes, roots, transparency-log settings) is
    /// twice the size of the other kinds, and every attestor entry would otherwise pay for it.
    Keyless(Box<Keyless>),
    Nested(AttestorSet),
    /// An entry without keys, certificates or keyless (Kyverno adds one for attestations that
    /// name no attestors, to fetch statements without checking who signed them).
    Empty,
}

impl AttestorKind {
    /// The path segment Kyverno appends to an entry's path in messages.
    pub fn path_segment(&self) -> &'static str {
        match self {
            AttestorKind::Keys(_) => ".keys",
            AttestorKind::Certificates(_) => ".certificates",
            AttestorKind::Keyless(_) => ".keyless",
            AttestorKind::Nested(_) | AttestorKind::Empty => "",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Keys {
    /// One PEM public key (sets with several keys are split into one entry per key).
    pub public_keys: String,
    /// `secret {name, namespace}` or a `k8s://ns/name` reference; resolved from values at run time.
    pub secret: Option<(String, String)>,
    pub kms: Option<String>,
    pub signature_algorithm: String,
    pub rekor: Rekor,
    pub ctlog: CtLog,
}

/// `rekor`: where the transparency log is and how to trust it. The default (no `rekor` block)
/// requires a transparency-log entry, as Kyverno does.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Rekor {
    pub url: Option<String>,
    pub pubkey: Option<String>,
    pub ignore_tlog: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CtLog {
    pub ignore_sct: bool,
    pub pubkey: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Certificates {
    pub cert: String,
    pub cert_chain: String,
    pub rekor: Rekor,
    pub ctlog: CtLog,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Keyless {
    pub issuer: Option<Wildcard>,
    pub issuer_regexp: Option<SerdeRegex>,
    pub subject: Option<Wildcard>,
    pub subject_regexp: Option<SerdeRegex>,
    /// PEM root certificates (the Fulcio roots to trust).
    pub roots: String,
    pub additional_extensions: BTreeMap<String, String>,
    pub rekor: Rekor,
    pub ctlog: CtLog,
    /// The texts of `issuer` and `subject`, for messages.
    pub issuer_text: String,
    pub subject_text: String,
}

/// `attestations[]`: statements of `type` signed by `attestors`, checked with `conditions`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attestation {
    pub name: String,
    pub predicate_type: String,
    pub attestors: Vec<AttestorSet>,
    /// `conditions[]`, each `{any, all}`, evaluated with the statement's predicate as context.
    pub conditions: Vec<Value>,
}

/// `imageExtractors.<Kind>[]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageExtractor {
    /// A JSON pointer with `*` segments, e.g. `/spec/steps/*/image` or `/spec/tasks/*`.
    pub path: String,
    /// The field holding the image when `path` selects objects.
    pub value: Option<String>,
    pub name: String,
    pub key: Option<String>,
    pub jmes_path: Option<String>,
}

/// A compiled regular expression that bundles store as its source text.
#[derive(Clone, Debug)]
pub struct SerdeRegex(pub Regex);

impl Serialize for SerdeRegex {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for SerdeRegex {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Regex::new(&text).map(SerdeRegex).map_err(serde::de::Error::custom)
    }
}

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn opt_s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn bool_or(v: &Value, key: &str, default: bool) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()))).collect())
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

/// Lowers a rule's `verifyImages` list and `imageExtractors` map.
pub fn lower(rule: &Value) -> Result<VerifyImages, LowerError> {
    let mut entries = Vec::new();
    let list = rule.get("verifyImages").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, entry) in list.iter().enumerate() {
        entries.push(lower_entry(entry, &format!("verifyImages[{i}]"))?);
    }
    let mut extractors = Vec::new();
    if let Some(map) = rule.get("imageExtractors").and_then(Value::as_object) {
        for (kind, list) in map {
            let items = list
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| ImageExtractor {
                            path: s(e, "path"),
                            value: opt_s(e, "value"),
                            name: opt_s(e, "name").unwrap_or_else(|| "custom".to_owned()),
                            key: opt_s(e, "key"),
                            jmes_path: opt_s(e, "jmesPath"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            extractors.push((kind.clone(), items));
        }
    }
    Ok(VerifyImages { entries, extractors })
}

/// Applies Kyverno's conversion of deprecated fields and lowers one entry.
fn lower_entry(e: &Value, path: &str) -> Result<ImageVerification, LowerError> {
    let verifier = match e.get("type").and_then(Value::as_str).unwrap_or("Cosign") {
        "Notary" => VerifierType::Notary,
        "SigstoreBundle" => VerifierType::SigstoreBundle,
        _ => VerifierType::Cosign,
    };
    let mut refs = strings(e.get("imageReferences"));
    if let Some(image) = opt_s(e, "image") {
        refs.push(image);
    }
    // The legacy single-attestor fields become one attestor set.
    let mut legacy: Option<Value> = None;
    if let Some(key) = opt_s(e, "key") {
        legacy = Some(json!({"keys": {"publicKeys": key}}));
    } else if opt_s(e, "issuer").is_some() || opt_s(e, "subject").is_some() || opt_s(e, "roots").is_some() {
        let mut keyless = serde_json::Map::new();
        for field in ["issuer", "subject", "roots"] {
            if let Some(v) = opt_s(e, field) {
                keyless.insert(field.to_owned(), json!(v));
            }
        }
        legacy = Some(json!({"keyless": keyless}));
    }
    if let (Some(Value::Object(l)), Some(a)) = (legacy.as_mut(), e.get("annotations")) {
        l.insert("annotations".to_owned(), a.clone());
    }
    let mut attestors_raw: Vec<Value> = e.get("attestors").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut attestations_raw: Vec<Value> = e.get("attestations").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(l) = legacy {
        let set = json!({"entries": [l]});
        if attestations_raw.is_empty() {
            attestors_raw.push(set);
        } else {
            for a in &mut attestations_raw {
                let slot = a.as_object_mut().map(|obj| obj.entry("attestors").or_insert_with(|| json!([])));
                if let Some(Value::Array(sets)) = slot {
                    sets.push(set.clone());
                }
            }
        }
    }
    let mut attestors = Vec::new();
    for (i, a) in attestors_raw.iter().enumerate() {
        attestors.push(lower_set(a, &format!("{path}.attestors[{i}]"))?);
    }
    let mut attestations = Vec::new();
    for (i, a) in attestations_raw.iter().enumerate() {
        let apath = format!("{path}.attestations[{i}]");
        let mut sets = Vec::new();
        for (j, set) in a.get("attestors").and_then(Value::as_array).into_iter().flatten().enumerate() {
            sets.push(lower_set(set, &format!("{apath}.attestors[{j}]"))?);
        }
        let predicate_type = opt_s(a, "type").or_else(|| opt_s(a, "predicateType")).unwrap_or_default();
        attestations.push(Attestation {
            name: s(a, "name"),
            predicate_type,
            attestors: sets,
            conditions: a.get("conditions").and_then(Value::as_array).cloned().unwrap_or_default(),
        });
    }
    let enforce = e.get("failureAction").and_then(Value::as_str).map(|a| a.eq_ignore_ascii_case("enforce"));
    let creds = e.get("imageRegistryCredentials").cloned().unwrap_or(Value::Null);
    let fingerprint = fingerprint(e, &attestors_raw, &attestations_raw);
    Ok(ImageVerification {
        verifier,
        image_references: refs.iter().map(|r| Wildcard::new(r)).collect(),
        skip_image_references: strings(e.get("skipImageReferences")).iter().map(|r| Wildcard::new(r)).collect(),
        enforce,
        repository: opt_s(e, "repository"),
        mutate_digest: bool_or(e, "mutateDigest", true),
        verify_digest: bool_or(e, "verifyDigest", true),
        required: bool_or(e, "required", true),
        use_cache: bool_or(e, "useCache", true),
        allow_insecure_registry: bool_or(&creds, "allowInsecureRegistry", false),
        attestors,
        attestations,
        annotations: string_map(e.get("annotations")),
        fingerprint,
    })
}

/// A stable digest of the trust-relevant parts of an entry, conditions removed.
fn fingerprint(e: &Value, attestors: &[Value], attestations: &[Value]) -> String {
    let stripped: Vec<Value> = attestations
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if let Some(obj) = a.as_object_mut() {
                obj.remove("conditions");
            }
            a
        })
        .collect();
    let material = json!({
        "type": e.get("type"),
        "repository": e.get("repository"),
        "annotations": e.get("annotations"),
        "attestors": attestors,
        "attestations": stripped,
    });
    let digest = Sha256::digest(material.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn lower_set(v: &Value, path: &str) -> Result<AttestorSet, LowerError> {
    let count = v.get("count").and_then(Value::as_u64).map(|n| n as usize);
    let mut entries = Vec::new();
    for (i, e) in v.get("entries").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let epath = format!("{path}.entries[{i}]");
        let annotations = string_map(e.get("annotations"));
        let repository = opt_s(e, "repository");
        if let Some(k) = e.get("keys") {
            // Several PEM keys in one entry become one entry each, as Kyverno expands them.
            let pem = s(k, "publicKeys");
            let base = lower_keys(k);
            let keys = split_pem(&pem);
            if keys.len() > 1 {
                for key in keys {
                    let kind = AttestorKind::Keys(Keys { public_keys: key, ..base.clone() });
                    entries.push(Attestor { kind, annotations: annotations.clone(), repository: repository.clone() });
                }
                continue;
            }
            entries.push(Attestor { kind: AttestorKind::Keys(base), annotations, repository });
        } else if let Some(c) = e.get("certificates") {
            let kind = AttestorKind::Certificates(Certificates {
                cert: s(c, "cert"),
                cert_chain: s(c, "certChain"),
                rekor: lower_rekor(c.get("rekor")),
                ctlog: lower_ctlog(c.get("ctlog")),
            });
            entries.push(Attestor { kind, annotations, repository });
        } else if let Some(k) = e.get("keyless") {
            let regex = |field: &str| -> Result<Option<SerdeRegex>, LowerError> {
                match opt_s(k, field) {
                    None => Ok(None),
                    Some(r) => Regex::new(&r)
                        .map(|re| Some(SerdeRegex(re)))
                        .map_err(|err| LowerError(format!("{epath}.keyless.{field}: invalid regular expression: {err}"))),
                }
            };
            let kind = AttestorKind::Keyless(Box::new(Keyless {
                issuer: opt_s(k, "issuer").map(|i| Wildcard::new(&i)),
                issuer_regexp: regex("issuerRegExp")?,
                subject: opt_s(k, "subject").map(|i| Wildcard::new(&i)),
                subject_regexp: regex("subjectRegExp")?,
                roots: s(k, "roots"),
                additional_extensions: string_map(k.get("additionalExtensions")),
                rekor: lower_rekor(k.get("rekor")),
                ctlog: lower_ctlog(k.get("ctlog")),
                issuer_text: s(k, "issuer"),
                subject_text: s(k, "subject"),
            }));
            entries.push(Attestor { kind, annotations, repository });
        } else if let Some(nested) = e.get("attestor") {
            let kind = AttestorKind::Nested(lower_set(nested, &format!("{epath}.attestor"))?);
            entries.push(Attestor { kind, annotations, repository });
        } else {
            entries.push(Attestor { kind: AttestorKind::Empty, annotations, repository });
        }
    }
    Ok(AttestorSet { count, entries })
}

fn lower_keys(k: &Value) -> Keys {
    let mut public_keys = s(k, "publicKeys");
    let mut secret = k.get("secret").map(|sec| (s(sec, "namespace"), s(sec, "name")));
    // `k8s://ns/name` in publicKeys names a secret rather than holding a key.
    if let Some(rest) = public_keys.trim().strip_prefix("k8s://") {
        let (ns, name) = rest.split_once('/').unwrap_or(("", rest));
        secret = Some((ns.to_owned(), name.to_owned()));
        public_keys.clear();
    }
    Keys {
        public_keys,
        secret,
        kms: opt_s(k, "kms"),
        signature_algorithm: s(k, "signatureAlgorithm"),
        rekor: lower_rekor(k.get("rekor")),
        ctlog: lower_ctlog(k.get("ctlog")),
    }
}

fn lower_rekor(v: Option<&Value>) -> Rekor {
    match v {
        None => Rekor::default(),
        Some(r) => Rekor { url: opt_s(r, "url"), pubkey: opt_s(r, "pubkey"), ignore_tlog: bool_or(r, "ignoreTlog", false) },
    }
}

fn lower_ctlog(v: Option<&Value>) -> CtLog {
    match v {
        None => CtLog::default(),
        Some(c) => CtLog { ignore_sct: bool_or(c, "ignoreSCT", false), pubkey: opt_s(c, "pubkey") },
    }
}

/// Splits a PEM text holding several public keys into one text per key.
fn split_pem(pem: &str) -> Vec<String> {
    const END: &str = "-----END PUBLIC KEY-----";
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(i) = rest.find(END) {
        let (key, tail) = rest.split_at(i + END.len());
        out.push(key.trim().to_owned());
        rest = tail;
    }
    if out.is_empty() {
        out.push(pem.to_owned());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn lower_yaml(text: &str) -> VerifyImages {
        let v: Value = serde_yaml_ng::from_str(text).unwrap();
        lower(&v).unwrap()
    }

    #[test]
    fn legacy_key_becomes_an_attestor() {
        let vi = lower_yaml("verifyImages:\n- image: 'ghcr.io/*'\n  key: KEY\n");
        let e = &vi.entries[0];
        assert!(e.image_references[0].matches("ghcr.io/a/b:1"));
        assert_eq!(e.attestors.len(), 1);
        assert!(matches!(&e.attestors[0].entries[0].kind, AttestorKind::Keys(k) if k.public_keys == "KEY"));
        assert!(e.mutate_digest && e.verify_digest && e.required && e.use_cache);
    }

    #[test]
    fn legacy_key_with_attestations_moves_into_each_attestation() {
        let vi = lower_yaml("verifyImages:\n- imageReferences: ['*']\n  key: KEY\n  attestations:\n  - predicateType: t\n");
        let e = &vi.entries[0];
        assert!(e.attestors.is_empty());
        assert_eq!(e.attestations[0].predicate_type, "t");
        assert_eq!(e.attestations[0].attestors.len(), 1);
    }

    #[test]
    fn several_pem_keys_expand_into_entries() {
        let pem = "-----BEGIN PUBLIC KEY-----\\nA\\n-----END PUBLIC KEY-----\\n-----BEGIN PUBLIC KEY-----\\nB\\n-----END PUBLIC KEY-----";
        let vi = lower_yaml(&format!("verifyImages:\n- attestors:\n  - count: 1\n    entries:\n    - keys:\n        publicKeys: \"{pem}\"\n"));
        let set = &vi.entries[0].attestors[0];
        assert_eq!(set.entries.len(), 2);
        assert_eq!(set.required_count(), 1);
    }

    #[test]
    fn conditions_do_not_change_the_fingerprint() {
        let a = lower_yaml("verifyImages:\n- attestations:\n  - type: t\n    conditions: [{all: [{key: a, operator: Equals, value: b}]}]\n");
        let b = lower_yaml("verifyImages:\n- attestations:\n  - type: t\n    conditions: [{all: [{key: a, operator: Equals, value: c}]}]\n");
        let c = lower_yaml("verifyImages:\n- attestations:\n  - type: u\n");
        assert_eq!(a.entries[0].fingerprint, b.entries[0].fingerprint);
        assert_ne!(a.entries[0].fingerprint, c.entries[0].fingerprint);
    }

    #[test]
    fn bad_subject_regexp_names_the_field() {
        let v: Value = serde_yaml_ng::from_str("verifyImages:\n- attestors:\n  - entries:\n    - keyless:\n        subjectRegExp: '('\n").unwrap();
        let err = lower(&v).unwrap_err();
        assert!(err.0.starts_with("verifyImages[0].attestors[0].entries[0].keyless.subjectRegExp: invalid regular expression"), "{}", err.0);
    }
}
