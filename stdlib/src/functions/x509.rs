//! Kyverno's `x509_decode`: a PEM certificate as the JSON object Go's `x509.Certificate` becomes
//! when Kyverno marshals it and reads it back into a map.
//!
//! The shape follows Go's `encoding/json` rules for that struct: byte slices are base64 strings,
//! enums are their integer values, empty slices are `null`, times are RFC 3339 in UTC, and every
//! number is a float (Kyverno decodes the JSON into `interface{}`). Kyverno replaces an RSA key's
//! modulus `N` with its decimal string, because a float cannot hold it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use x509_parser::der_parser::oid::Oid;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};
use x509_parser::public_key::PublicKey;

use super::strings::kyverno;
use super::{Call, FunctionDecl, Param, Purity, Type};
use crate::jmespath::{Dialect, ErrorKind, EvalError};

static FUNCTIONS: &[FunctionDecl] = &[kyverno!(
    "x509_decode",
    [Param::required("pem", &[Type::String])],
    Type::Object,
    "Decodes a PEM-encoded X.509 certificate into an object with the fields of Go's x509.Certificate (Subject, Issuer, NotBefore, NotAfter, DNSNames, PublicKey, ...), e.g. x509_decode(base64_decode(request.object.data.\"tls.crt\")).Subject.CommonName.",
    // The example must hold against an empty document, and a certificate does not fit in one.
    "",
    x509_decode
)];

pub(crate) fn functions() -> &'static [FunctionDecl] {
    FUNCTIONS
}

fn failure(message: impl Into<String>) -> EvalError {
    EvalError::new(ErrorKind::Function, message)
}

fn x509_decode(call: &mut Call) -> Result<Value, EvalError> {
    decode(call.string(0)?).map_err(failure)
}

/// Decodes the first PEM block of `text` as a certificate.
pub fn decode(text: &str) -> Result<Value, String> {
    let der = first_pem_block(text).ok_or_else(|| "invalid certificate".to_owned())?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| format!("x509: malformed certificate: {e}"))?;
    Ok(certificate(&cert))
}

/// The bytes of the first `-----BEGIN ...-----` block, whatever its type (Go's `pem.Decode`).
fn first_pem_block(text: &str) -> Option<Vec<u8>> {
    let start = text.find("-----BEGIN ")?;
    let rest = text.get(start..)?;
    let header_end = rest.find('\n')?;
    let body = rest.get(header_end + 1..)?;
    let end = body.find("-----END ")?;
    let b64: String = body.get(..end)?.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

/// A number as Kyverno ends up with it (a float64), written as an integer when it is one, as
/// Go's encoder does.
fn num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 { json!(n as i64) } else { json!(n) }
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(STANDARD.encode(bytes))
}

/// Go's JSON for an `asn1.ObjectIdentifier`: its arcs as numbers.
fn oid_arcs(oid: &Oid) -> Value {
    match oid.iter() {
        Some(arcs) => Value::Array(arcs.map(|a| num(a as f64)).collect()),
        None => Value::Null,
    }
}

/// A list as Go marshals a slice: `null` when empty.
fn list(items: Vec<Value>) -> Value {
    if items.is_empty() { Value::Null } else { Value::Array(items) }
}

fn strings(items: Vec<String>) -> Value {
    list(items.into_iter().map(Value::String).collect())
}

/// `pkix.Name`: the well-known attributes by field, and every attribute in `Names`.
fn name(n: &X509Name) -> Value {
    let mut fields: Vec<(&str, Vec<String>)> = [
        ("Country", "2.5.4.6"),
        ("Organization", "2.5.4.10"),
        ("OrganizationalUnit", "2.5.4.11"),
        ("Locality", "2.5.4.7"),
        ("Province", "2.5.4.8"),
        ("StreetAddress", "2.5.4.9"),
        ("PostalCode", "2.5.4.17"),
    ]
    .iter()
    .map(|(field, oid)| {
        let values = n
            .iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == *oid)
            .filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect();
        (*field, values)
    })
    .collect();
    let single = |oid: &str| -> String {
        n.iter_attributes()
            .filter(|a| a.attr_type().to_id_string() == oid)
            .filter_map(|a| a.as_str().ok())
            .last()
            .unwrap_or_default()
            .to_owned()
    };
    let mut out = Map::new();
    for (field, values) in fields.drain(..) {
        out.insert(field.to_owned(), strings(values));
    }
    out.insert("SerialNumber".into(), Value::String(single("2.5.4.5")));
    out.insert("CommonName".into(), Value::String(single("2.5.4.3")));
    let names: Vec<Value> = n
        .iter_attributes()
        .map(|a| json!({"Type": oid_arcs(a.attr_type()), "Value": a.as_str().unwrap_or_default()}))
        .collect();
    out.insert("Names".into(), list(names));
    out.insert("ExtraNames".into(), Value::Null);
    Value::Object(out)
}

/// Go's `x509.SignatureAlgorithm` for an algorithm identifier.
fn signature_algorithm(oid: &str) -> f64 {
    match oid {
        "1.2.840.113549.1.1.2" => 1.0,
        "1.2.840.113549.1.1.4" => 2.0,
        "1.2.840.113549.1.1.5" => 3.0,
        "1.2.840.113549.1.1.11" => 4.0,
        "1.2.840.113549.1.1.12" => 5.0,
        "1.2.840.113549.1.1.13" => 6.0,
        "1.2.840.10040.4.3" => 7.0,
        "2.16.840.1.101.3.4.3.2" => 8.0,
        "1.2.840.10045.4.1" => 9.0,
        "1.2.840.10045.4.3.2" => 10.0,
        "1.2.840.10045.4.3.3" => 11.0,
        "1.2.840.10045.4.3.4" => 12.0,
        // RSASSA-PSS: Go tells the hash from the parameters; SHA-256 is by far the common one.
        "1.2.840.113549.1.1.10" => 13.0,
        "1.3.101.112" => 16.0,
        _ => 0.0,
    }
}

/// Go's `x509.PublicKeyAlgorithm` and the JSON of its public key value.
fn public_key(cert: &X509Certificate) -> (f64, Value) {
    let spki = &cert.tbs_certificate.subject_pki;
    let alg = spki.algorithm.algorithm.to_id_string();
    let big = |bytes: &[u8]| -> f64 { bytes.iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b)) };
    match (alg.as_str(), spki.parsed()) {
        ("1.2.840.113549.1.1.1", Ok(PublicKey::RSA(rsa))) => {
            let n = decimal(rsa.modulus);
            (1.0, json!({"N": n, "E": num(big(rsa.exponent))}))
        }
        ("1.2.840.10040.4.1", _) => (2.0, json!({"Parameters": {"P": Value::Null, "Q": Value::Null, "G": Value::Null}, "Y": Value::Null})),
        ("1.2.840.10045.2.1", Ok(PublicKey::EC(point))) => {
            // An uncompressed point: 0x04, then X and Y of equal length.
            let data = point.data();
            let coords = data.get(1..).unwrap_or_default();
            let (x, y) = coords.split_at(coords.len() / 2);
            (3.0, json!({"Curve": {}, "X": num(big(x)), "Y": num(big(y))}))
        }
        ("1.3.101.112", _) => (4.0, b64(&spki.subject_public_key.data)),
        _ => (0.0, Value::Null),
    }
}

/// The decimal digits of a big-endian unsigned integer.
fn decimal(bytes: &[u8]) -> String {
    // Repeated division by 10^9 of a base-2^32 number; plenty for 4096-bit moduli.
    let mut limbs: Vec<u32> = Vec::with_capacity(bytes.len() / 4 + 1);
    let pad = (4 - bytes.len() % 4) % 4;
    let padded: Vec<u8> = std::iter::repeat_n(0u8, pad).chain(bytes.iter().copied()).collect();
    for chunk in padded.chunks(4) {
        limbs.push(chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)));
    }
    let mut parts = Vec::new();
    while limbs.iter().any(|l| *l != 0) {
        let mut rem: u64 = 0;
        for limb in limbs.iter_mut() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        parts.push(rem);
    }
    let mut out = parts.pop().map(|p| p.to_string()).unwrap_or_else(|| "0".to_owned());
    while let Some(p) = parts.pop() {
        out.push_str(&format!("{p:09}"));
    }
    out
}

fn certificate(cert: &X509Certificate) -> Value {
    let tbs = &cert.tbs_certificate;
    let (pk_alg, pk) = public_key(cert);
    let mut key_usage = 0.0;
    let mut ext_key_usage = Vec::new();
    let mut unknown_eku = Vec::new();
    let (mut bc_valid, mut is_ca, mut max_path_len, mut max_path_len_zero) = (false, false, 0.0, false);
    let (mut skid, mut akid) = (Value::Null, Value::Null);
    let (mut dns, mut emails, mut ips, mut uris) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut ocsp = Vec::new();
    let mut issuing = Vec::new();
    let mut crl = Vec::new();
    let mut policies = Vec::new();
    let mut extensions = Vec::new();
    for ext in tbs.extensions() {
        extensions.push(json!({"Id": oid_arcs(&ext.oid), "Critical": ext.critical, "Value": b64(ext.value)}));
        match ext.parsed_extension() {
            ParsedExtension::KeyUsage(ku) => {
                // Both number the bits from the first one of the DER bit string
                // (digitalSignature is 1), so the flags are Go's `KeyUsage` as they are.
                key_usage = f64::from(ku.flags);
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let known = [
                    (eku.any, 0.0),
                    (eku.server_auth, 1.0),
                    (eku.client_auth, 2.0),
                    (eku.code_signing, 3.0),
                    (eku.email_protection, 4.0),
                    (eku.time_stamping, 8.0),
                    (eku.ocsp_signing, 9.0),
                ];
                ext_key_usage.extend(known.iter().filter(|(set, _)| *set).map(|(_, n)| num(*n)));
                unknown_eku.extend(eku.other.iter().map(oid_arcs));
            }
            ParsedExtension::BasicConstraints(bc) => {
                bc_valid = true;
                is_ca = bc.ca;
                match bc.path_len_constraint {
                    Some(n) => {
                        max_path_len = f64::from(n);
                        max_path_len_zero = n == 0;
                    }
                    None => max_path_len = -1.0,
                }
            }
            ParsedExtension::SubjectKeyIdentifier(id) => skid = b64(id.0),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                if let Some(id) = &aki.key_identifier {
                    akid = b64(id.0);
                }
            }
            ParsedExtension::SubjectAlternativeName(san) => {
                for gn in &san.general_names {
                    match gn {
                        GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                        GeneralName::RFC822Name(e) => emails.push((*e).to_owned()),
                        GeneralName::URI(u) => uris.push(json!({"Scheme": u.split(':').next().unwrap_or_default(), "Opaque": "", "User": Value::Null, "Host": "", "Path": "", "RawPath": "", "OmitHost": false, "ForceQuery": false, "RawQuery": "", "Fragment": "", "RawFragment": ""})),
                        GeneralName::IPAddress(bytes) => ips.push(ip_text(bytes)),
                        _ => {}
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in &aia.accessdescs {
                    if let GeneralName::URI(u) = &desc.access_location {
                        match desc.access_method.to_id_string().as_str() {
                            "1.3.6.1.5.5.7.48.1" => ocsp.push((*u).to_owned()),
                            "1.3.6.1.5.5.7.48.2" => issuing.push((*u).to_owned()),
                            _ => {}
                        }
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for p in points.iter() {
                    if let Some(x509_parser::extensions::DistributionPointName::FullName(names)) = &p.distribution_point {
                        crl.extend(names.iter().filter_map(|n| match n {
                            GeneralName::URI(u) => Some((*u).to_owned()),
                            _ => None,
                        }));
                    }
                }
            }
            ParsedExtension::CertificatePolicies(ps) => policies.extend(ps.iter().map(|p| oid_arcs(&p.policy_id))),
            _ => {}
        }
    }
    let time = |t: &x509_parser::time::ASN1Time| -> Value {
        let secs = t.timestamp();
        match chrono::DateTime::from_timestamp(secs, 0) {
            Some(dt) => Value::String(dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            None => Value::Null,
        }
    };
    let serial = tbs.raw_serial().iter().fold(0.0, |acc, b| acc * 256.0 + f64::from(*b));
    let mut out = Map::new();
    out.insert("Raw".into(), b64(cert.as_raw()));
    out.insert("RawTBSCertificate".into(), b64(tbs.as_ref()));
    out.insert("RawSubjectPublicKeyInfo".into(), b64(tbs.subject_pki.raw));
    out.insert("RawSubject".into(), b64(tbs.subject.as_raw()));
    out.insert("RawIssuer".into(), b64(tbs.issuer.as_raw()));
    out.insert("Signature".into(), b64(&cert.signature_value.data));
    out.insert("SignatureAlgorithm".into(), num(signature_algorithm(&cert.signature_algorithm.algorithm.to_id_string())));
    out.insert("PublicKeyAlgorithm".into(), num(pk_alg));
    out.insert("PublicKey".into(), pk);
    out.insert("Version".into(), num(f64::from(tbs.version.0) + 1.0));
    out.insert("SerialNumber".into(), num(serial));
    out.insert("Issuer".into(), name(&tbs.issuer));
    out.insert("Subject".into(), name(&tbs.subject));
    out.insert("NotBefore".into(), time(&tbs.validity.not_before));
    out.insert("NotAfter".into(), time(&tbs.validity.not_after));
    out.insert("KeyUsage".into(), num(key_usage));
    out.insert("Extensions".into(), list(extensions));
    out.insert("ExtraExtensions".into(), Value::Null);
    out.insert("UnhandledCriticalExtensions".into(), Value::Null);
    out.insert("ExtKeyUsage".into(), list(ext_key_usage));
    out.insert("UnknownExtKeyUsage".into(), list(unknown_eku));
    out.insert("BasicConstraintsValid".into(), json!(bc_valid));
    out.insert("IsCA".into(), json!(is_ca));
    out.insert("MaxPathLen".into(), num(max_path_len));
    out.insert("MaxPathLenZero".into(), json!(max_path_len_zero));
    out.insert("SubjectKeyId".into(), skid);
    out.insert("AuthorityKeyId".into(), akid);
    out.insert("OCSPServer".into(), strings(ocsp));
    out.insert("IssuingCertificateURL".into(), strings(issuing));
    out.insert("DNSNames".into(), strings(dns));
    out.insert("EmailAddresses".into(), strings(emails));
    out.insert("IPAddresses".into(), strings(ips));
    out.insert("URIs".into(), list(uris));
    for field in [
        "PermittedDNSDomains",
        "ExcludedDNSDomains",
        "PermittedIPRanges",
        "ExcludedIPRanges",
        "PermittedEmailAddresses",
        "ExcludedEmailAddresses",
        "PermittedURIDomains",
        "ExcludedURIDomains",
    ] {
        out.insert(field.into(), Value::Null);
    }
    out.insert("PermittedDNSDomainsCritical".into(), json!(false));
    out.insert("CRLDistributionPoints".into(), strings(crl));
    out.insert("PolicyIdentifiers".into(), list(policies));
    Value::Object(out)
}

/// Go's text form of a `net.IP`.
fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => bytes.iter().map(u8::to_string).collect::<Vec<_>>().join("."),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(octets).to_string()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn decimal_of_big_numbers() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[1, 0]), "256");
        assert_eq!(decimal(&[0xff; 9]), "4722366482869645213695");
    }

    #[test]
    fn not_a_certificate() {
        assert_eq!(decode("hello").unwrap_err(), "invalid certificate");
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(decode(bad).unwrap_err().starts_with("x509: malformed certificate"));
    }
}
