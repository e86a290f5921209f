//! AdmissionReview bytes in, AdmissionReview response bytes out, over the set engine.
//!
//! The request is parsed once into the matching document; the fields the engine needs
//! (operation, object, old object, user) are read from it by name. The response follows
//! Kyverno's: a request is blocked when a failed rule is Enforce, or when a rule errors (the
//! failure policy is taken to be Kyverno's default, `Fail`); the denial message lists the
//! failing rules per policy in the YAML shape Kyverno prints.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::{CompiledSet, SetRequest, SetResult};
use crate::doc::{Doc, DocError, TAG_OBJECT};
use crate::engine::{Status, UserInfo};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewError {
    Json(DocError),
    /// The document is not an AdmissionReview with a `request` object.
    Shape(&'static str),
}

impl std::fmt::Display for ReviewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReviewError::Json(e) => write!(f, "invalid JSON: {e}"),
            ReviewError::Shape(what) => write!(f, "not an AdmissionReview: {what}"),
        }
    }
}

/// A parsed AdmissionReview request.
pub struct Review<'a> {
    pub doc: Doc<'a>,
    pub uid: String,
    pub operation: String,
    pub object: u32,
    pub old_object: Option<u32>,
    pub user: UserInfo,
}

impl<'a> Review<'a> {
    pub fn parse(bytes: &'a [u8], set: &CompiledSet) -> Result<Review<'a>, ReviewError> {
        let doc = Doc::parse(bytes, set.keys()).map_err(ReviewError::Json)?;
        let request = doc.get(doc.root(), "request").ok_or(ReviewError::Shape("no `request`"))?;
        if doc.node(request).tag != TAG_OBJECT {
            return Err(ReviewError::Shape("`request` is not an object"));
        }
        let text = |keys: &[&str]| doc.get_str(request, keys).unwrap_or_default().to_owned();
        let object_node = |key: &str| doc.get(request, key).filter(|&n| doc.node(n).tag == TAG_OBJECT);
        let object = object_node("object");
        let old_object = object_node("oldObject");
        let user_node = doc.get(request, "userInfo");
        let groups = user_node
            .and_then(|u| doc.get(u, "groups"))
            .map(|g| doc.elems(g).iter().filter_map(|&e| doc.str(e).map(str::to_owned)).collect())
            .unwrap_or_default();
        let user = UserInfo { username: text(&["userInfo", "username"]), groups, ..UserInfo::default() };
        let uid = text(&["uid"]);
        let operation = text(&["operation"]);
        let object = object.or(old_object).ok_or(ReviewError::Shape("no `object` or `oldObject`"))?;
        Ok(Review { doc, uid, operation, object, old_object, user })
    }

    /// The engine's view of this review.
    pub fn request(&self) -> SetRequest<'_, 'a> {
        let resource = if self.operation == "DELETE" { self.old_object.unwrap_or(self.object) } else { self.object };
        SetRequest {
            doc: &self.doc,
            operation: &self.operation,
            resource,
            object: self.object,
            old_object: self.old_object,
            user: &self.user,
        }
    }
}

/// Evaluates AdmissionReview bytes and returns the AdmissionReview response bytes.
pub fn admit(set: &CompiledSet, bytes: &[u8], results: &mut Vec<SetResult>) -> Vec<u8> {
    results.clear();
    let review = match Review::parse(bytes, set) {
        Ok(r) => r,
        Err(e) => return response("", false, Some(&format!("palisade: {e}"))),
    };
    set.evaluate(&review.request(), results);
    respond(set, &review, results)
}

/// The AdmissionReview response for a review's results: allowed, or denied with Kyverno's
/// message listing the blocking rules per policy.
pub fn respond(set: &CompiledSet, review: &Review, results: &[SetResult]) -> Vec<u8> {
    let blocked: Vec<&SetResult> = results
        .iter()
        .filter(|r| (r.status == Status::Fail && r.enforce) || r.status == Status::Error)
        .collect();
    if blocked.is_empty() {
        return response(&review.uid, true, None);
    }
    let doc = &review.doc;
    let resource = review.request().resource;
    let kind = doc.get_str(resource, &["kind"]).unwrap_or_default();
    let ns = doc.get_str(resource, &["metadata", "namespace"]).unwrap_or_default();
    let name = doc.get_str(resource, &["metadata", "name"]).unwrap_or_default();
    let mut by_policy: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in blocked {
        let full = set.rule_result(r);
        by_policy.entry(full.policy).or_default().insert(full.rule, full.message);
    }
    let mut message = format!("\n\nresource {kind}/{ns}/{name} was blocked due to the following policies \n\n");
    for (policy, rules) in &by_policy {
        let _ = writeln!(message, "{}:", yaml_scalar(policy));
        for (rule, msg) in rules {
            let _ = writeln!(message, "  {}: {}", yaml_scalar(rule), yaml_scalar(msg));
        }
    }
    response(&review.uid, false, Some(&message))
}

/// The AdmissionReview response, written directly: the same bytes `serde_json` gives for the
/// document `{"apiVersion", "kind", "response": {"uid", "allowed", "status"?}}`.
fn response(uid: &str, allowed: bool, message: Option<&str>) -> Vec<u8> {
    response_json(uid, allowed, message, &[], None)
}

/// An AdmissionReview response written directly, in the key order (and with the escaping) of
/// `serde_json` on `{"apiVersion", "kind", "response": {"uid", "allowed", "status"?,
/// "warnings"?, "patchType"?, "patch"?}}`. The webhook writes its answers with it too; `patch`
/// is the JSON Patch, base64-encoded here.
pub fn response_json(uid: &str, allowed: bool, message: Option<&str>, warnings: &[String], patch: Option<&[u8]>) -> Vec<u8> {
    match message {
        Some(m) => response_json_with(uid, allowed, Some((m.len(), &|out: &mut Vec<u8>| crate::json_text::write_escaped(out, m))), warnings, patch),
        None => response_json_with(uid, allowed, None, warnings, patch),
    }
}

/// A response's denial message given as its length (about) and a writer of the inside of its
/// JSON string literal, escaped: for a message written in pieces straight into the response
/// (the webhook's block message) rather than built as a text first.
pub type MessageWriter<'a> = (usize, &'a dyn Fn(&mut Vec<u8>));

/// [`response_json`] with the message from a [`MessageWriter`].
pub fn response_json_with(uid: &str, allowed: bool, message: Option<MessageWriter>, warnings: &[String], patch: Option<&[u8]>) -> Vec<u8> {
    use base64::Engine as _;
    let size = 128 + uid.len() + message.map_or(0, |(len, _)| len + 64) + warnings.iter().map(|w| w.len() + 8).sum::<usize>();
    let mut out = Vec::with_capacity(size + patch.map_or(0, |p| p.len() * 4 / 3 + 64));
    out.extend_from_slice(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#);
    crate::json_text::write(&mut out, uid);
    out.extend_from_slice(if allowed { br#","allowed":true"# } else { br#","allowed":false"# });
    if let Some((_, write)) = message {
        out.extend_from_slice(br#","status":{"status":"Failure","message":""#);
        write(&mut out);
        out.extend_from_slice(b"\"}");
    }
    if !warnings.is_empty() {
        out.extend_from_slice(br#","warnings":["#);
        for (i, w) in warnings.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            crate::json_text::write(&mut out, w);
        }
        out.push(b']');
    }
    if let Some(p) = patch {
        // Base64 needs no JSON escaping.
        out.extend_from_slice(br#","patchType":"JSONPatch","patch":""#);
        out.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(p).as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"}}");
    out
}

/// A YAML scalar: plain when safe, else single-quoted with `''` escaping, as yaml.v3 writes
/// messages. (Line folding of long strings is not reproduced.)
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !s.starts_with(['-', '.']);
    if plain { s.to_owned() } else { format!("'{}'", s.replace('\'', "''")) }
}

/// The resource of a review as a `serde_json::Value` (tools and tests).
pub fn resource_value(review: &Review) -> Value {
    review.doc.to_value(review.request().resource)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use serde_json::json;

    #[test]
    fn response_bytes_are_what_serde_json_writes() {
        for (uid, allowed, message) in [
            ("", true, None),
            ("0d3c-\"quoted\"-\\", false, Some("\n\nresource Pod/default/x was blocked\u{1}\t'é' \u{2028}")),
            ("uid", false, Some("")),
        ] {
            let mut resp = json!({ "uid": uid, "allowed": allowed });
            if let Some(m) = message {
                resp["status"] = json!({ "status": "Failure", "message": m });
            }
            let review = json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp });
            assert_eq!(String::from_utf8_lossy(&super::response(uid, allowed, message)), review.to_string());
        }
    }
}
