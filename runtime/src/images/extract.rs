//! Finding the images of a resource: the built-in extractors for Pods and pod controllers, and a
//! rule's `imageExtractors` for other kinds (JSON pointers with `*` segments).

use serde_json::Value;

use palisade_compiler::ir::images::ImageExtractor;
use palisade_stdlib::jmespath::{self, EvalConfig};

use super::reference::ImageInfo;

/// Where the pod spec sits for each built-in kind.
fn pod_spec_prefix(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("/spec"),
        "Deployment" | "DaemonSet" | "StatefulSet" | "Job" | "ReplicaSet" | "ReplicationController" => Some("/spec/template/spec"),
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// The images of a resource, in Kyverno's order (init containers, containers, ephemeral
/// containers; then custom extractors). Entries that are not valid references are reported as
/// errors with their pointer, so a typo in an image never passes silently.
pub fn extract(resource: &Value, custom: &[(String, Vec<ImageExtractor>)]) -> (Vec<ImageInfo>, Vec<String>) {
    let kind = resource.get("kind").and_then(Value::as_str).unwrap_or_default();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    if let Some((_, extractors)) = custom.iter().find(|(k, _)| k == kind) {
        for ex in extractors {
            custom_images(resource, ex, &mut out, &mut errors);
        }
        return (out, errors);
    }
    let Some(prefix) = pod_spec_prefix(kind) else { return (out, errors) };
    for group in ["initContainers", "containers", "ephemeralContainers"] {
        let list = resource.pointer(&format!("{prefix}/{group}")).and_then(Value::as_array);
        for (i, c) in list.into_iter().flatten().enumerate() {
            let Some(image) = c.get("image").and_then(Value::as_str) else { continue };
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            let pointer = format!("{prefix}/{group}/{i}/image");
            match ImageInfo::parse(image, &pointer, group, name) {
                Some(info) => out.push(info),
                None => errors.push(format!("invalid image reference {image:?} at {pointer}")),
            }
        }
    }
    (out, errors)
}

fn custom_images(resource: &Value, ex: &ImageExtractor, out: &mut Vec<ImageInfo>, errors: &mut Vec<String>) {
    let segments: Vec<&str> = ex.path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    let mut found = Vec::new();
    walk(resource, &segments, String::new(), &mut found);
    for (pointer, node) in found {
        let (pointer, value, key_source) = match &ex.value {
            Some(field) => (format!("{pointer}/{}", escape(field)), node.get(field), node),
            None => (pointer, Some(node), node),
        };
        let Some(Value::String(raw)) = value else { continue };
        let name = ex.key.as_deref().and_then(|k| key_source.get(k)).and_then(Value::as_str).unwrap_or(raw.as_str()).to_owned();
        let image = match &ex.jmes_path {
            Some(expr) => match jmespath::search(expr, &Value::String(raw.clone()), &EvalConfig::kyverno()) {
                Ok(Value::String(s)) => s,
                Ok(other) => {
                    errors.push(format!("imageExtractors jmesPath {expr:?} gave {other} for {pointer}, not a string"));
                    continue;
                }
                Err(e) => {
                    errors.push(format!("imageExtractors jmesPath {expr:?} failed at {pointer}: {e}"));
                    continue;
                }
            },
            None => raw.clone(),
        };
        match ImageInfo::parse(&image, &pointer, &ex.name, &name) {
            Some(info) => out.push(info),
            None => errors.push(format!("invalid image reference {image:?} at {pointer}")),
        }
    }
}

fn walk<'a>(node: &'a Value, segments: &[&str], pointer: String, out: &mut Vec<(String, &'a Value)>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push((pointer, node));
        return;
    };
    if *first == "*" {
        match node {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, rest, format!("{pointer}/{i}"), out);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, rest, format!("{pointer}/{}", escape(k)), out);
                }
            }
            _ => {}
        }
        return;
    }
    let key = first.replace("~1", "/").replace("~0", "~");
    let child = match node {
        Value::Object(map) => map.get(&key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    };
    if let Some(child) = child {
        walk(child, rest, format!("{pointer}/{}", escape(&key)), out);
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_controller_images_with_pointers() {
        let deploy = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox"}],
            "containers": [{"name": "app", "image": "ghcr.io/a/app:v1"}, {"name": "bad", "image": "Bad Image"}]}}}});
        let (images, errors) = extract(&deploy, &[]);
        let got: Vec<(String, String)> = images.iter().map(|i| (i.reference(), i.pointer.clone())).collect();
        assert_eq!(got, vec![
            ("docker.io/busybox:latest".to_owned(), "/spec/template/spec/initContainers/0/image".to_owned()),
            ("ghcr.io/a/app:v1".to_owned(), "/spec/template/spec/containers/0/image".to_owned()),
        ]);
        assert_eq!(errors, vec!["invalid image reference \"Bad Image\" at /spec/template/spec/containers/1/image"]);
    }

    #[test]
    fn custom_extractor_with_value_and_key() {
        let task = json!({"kind": "Task", "spec": {"steps": [{"name": "build", "image": "r.io/b:1"}, {"name": "x"}]}});
        let ex = ImageExtractor { path: "/spec/steps/*".into(), value: Some("image".into()), name: "steps".into(), key: Some("name".into()), jmes_path: None };
        let (images, errors) = extract(&task, &[("Task".into(), vec![ex])]);
        assert!(errors.is_empty());
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].pointer, "/spec/steps/0/image");
        assert_eq!(images[0].name, "build");
        assert_eq!(images[0].group, "steps");
    }
}
