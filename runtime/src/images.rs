//! The `images` variable: the images of a workload's containers, parsed like Kyverno does, keyed
//! by container name (`images.containers.<name>.registry`, `.path`, `.name`, `.tag`, ...).

use serde_json::{Map, Value, json};

/// Splits an image reference into registry, path, tag and digest, with Docker's defaults
/// (`docker.io` registry, `latest` tag when neither tag nor digest is given). Docker Hub's
/// `library/` prefix is not added, as in Kyverno's image information.
pub fn parse(image: &str) -> Value {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, d),
        None => (image, ""),
    };
    // A tag follows the last `:` after the last `/` (a `:` before it is a registry port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name_part, tag) = match rest.get(last_slash..).and_then(|tail| tail.rfind(':')) {
        Some(i) => (rest.get(..last_slash + i).unwrap_or(rest), rest.get(last_slash + i + 1..).unwrap_or("")),
        None => (rest, ""),
    };
    let (registry, path) = match name_part.split_once('/') {
        Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => (first.to_owned(), path.to_owned()),
        _ => ("docker.io".to_owned(), name_part.to_owned()),
    };
    let tag = if tag.is_empty() && digest.is_empty() { "latest".to_owned() } else { tag.to_owned() };
    let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
    let mut reference = format!("{registry}/{path}");
    if !tag.is_empty() {
        reference.push(':');
        reference.push_str(&tag);
    }
    let reference_with_tag = reference.clone();
    if !digest.is_empty() {
        reference.push('@');
        reference.push_str(digest);
    }
    let mut out = json!({"registry": registry, "name": name, "path": path, "reference": reference, "referenceWithTag": reference_with_tag});
    if let Value::Object(m) = &mut out {
        if !tag.is_empty() {
            m.insert("tag".into(), json!(tag));
        }
        if !digest.is_empty() {
            m.insert("digest".into(), json!(digest));
        }
    }
    out
}

/// The `images` object of a resource: for Pods and for workloads with a pod template.
pub fn of(resource: &Value) -> Value {
    let spec = ["/spec", "/spec/template/spec", "/spec/jobTemplate/spec/template/spec"]
        .iter()
        .filter_map(|p| resource.pointer(p))
        .find(|s| s.get("containers").is_some());
    let mut out = Map::new();
    if let Some(spec) = spec {
        for field in ["containers", "initContainers", "ephemeralContainers"] {
            let Some(items) = spec.get(field).and_then(Value::as_array) else { continue };
            let mut by_name = Map::new();
            for c in items {
                if let (Some(name), Some(image)) = (c.get("name").and_then(Value::as_str), c.get("image").and_then(Value::as_str)) {
                    by_name.insert(name.to_owned(), parse(image));
                }
            }
            if !by_name.is_empty() {
                out.insert(field.to_owned(), Value::Object(by_name));
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn image_parts() {
        let i = parse("busybox:1.28");
        assert_eq!((i["registry"].as_str(), i["path"].as_str(), i["tag"].as_str()), (Some("docker.io"), Some("busybox"), Some("1.28")));
        let i = parse("localhost:5000/team/app@sha256:abc");
        assert_eq!((i["registry"].as_str(), i["path"].as_str(), i["name"].as_str()), (Some("localhost:5000"), Some("team/app"), Some("app")));
        assert_eq!(i.get("tag"), None);
        assert_eq!(parse("kyverno/kyverno")["tag"], "latest");
    }
}
