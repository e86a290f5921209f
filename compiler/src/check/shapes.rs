//! The shapes of the Kubernetes objects CEL expressions read, for the kinds whose shape is
//! known: Pods and the pod controllers. The table (`k8s_shapes.txt`) is generated from the
//! k8s-openapi crate's OpenAPI types by `scripts/gen-cel-shapes`; this module reads it once.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Type name -> (JSON field name -> field type).
type Table = HashMap<&'static str, HashMap<&'static str, &'static str>>;

static TEXT: &str = include_str!("k8s_shapes.txt");

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        TEXT.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let name = words.next()?;
                Some((name, words.filter_map(|w| w.split_once(':')).collect()))
            })
            .collect()
    })
}

/// The type of a kind (`Pod`) or plural resource (`pods`), when its shape is known.
pub fn root_type(kind_or_resource: &str) -> Option<&'static str> {
    Some(match kind_or_resource {
        "Pod" | "pods" => "api::core::v1::Pod",
        "ReplicationController" | "replicationcontrollers" => "api::core::v1::ReplicationController",
        "Deployment" | "deployments" => "api::apps::v1::Deployment",
        "DaemonSet" | "daemonsets" => "api::apps::v1::DaemonSet",
        "StatefulSet" | "statefulsets" => "api::apps::v1::StatefulSet",
        "ReplicaSet" | "replicasets" => "api::apps::v1::ReplicaSet",
        "Job" | "jobs" => "api::batch::v1::Job",
        "CronJob" | "cronjobs" => "api::batch::v1::CronJob",
        _ => return None,
    })
}

/// What a step leads to from a type.
pub enum Lookup {
    /// The field's type.
    Found(&'static str),
    /// The type has no such field; these are the ones it has.
    Missing(Vec<&'static str>),
    /// Nothing can be said (a scalar, `any`, a list where a field was asked for).
    Unknown,
}

/// The type of field `name` of type `ty`. A map's values are reached by any key.
pub fn field(ty: &str, name: &str) -> Lookup {
    if let Some(inner) = ty.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        return Lookup::Found(leak(inner));
    }
    match table().get(ty) {
        Some(fields) => match fields.get(name) {
            Some(t) => Lookup::Found(t),
            None => {
                let mut names: Vec<&'static str> = fields.keys().copied().collect();
                names.sort_unstable();
                Lookup::Missing(names)
            }
        },
        None => Lookup::Unknown,
    }
}

/// The element of a list or the value of a map (`x[i]`).
pub fn element(ty: &str) -> Option<&'static str> {
    ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')).or_else(|| ty.strip_prefix('{').and_then(|t| t.strip_suffix('}'))).map(leak)
}

/// What a comprehension iterates: a list's elements, a map's keys.
pub fn iterated(ty: &str) -> Option<&'static str> {
    if ty.starts_with('{') {
        return Some("string");
    }
    ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')).map(leak)
}

/// Type names are slices of the static table text; a nested name (`[T]` inside `{...}`) is
/// found in it again rather than allocated.
fn leak(name: &str) -> &'static str {
    TEXT.find(name).and_then(|i| TEXT.get(i..i + name.len())).unwrap_or("any")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_knows_pods_and_controllers() {
        let Lookup::Found(spec) = field("api::core::v1::Pod", "spec") else { panic!("no spec") };
        let Lookup::Found(containers) = field(spec, "containers") else { panic!("no containers") };
        assert_eq!(iterated(containers), Some("api::core::v1::Container"));
        let Lookup::Found(meta) = field("api::apps::v1::Deployment", "metadata") else { panic!("no metadata") };
        let Lookup::Found(labels) = field(meta, "labels") else { panic!("no labels") };
        assert_eq!(iterated(labels), Some("string"));
        assert!(matches!(field("api::core::v1::Container", "imagePullPolicy"), Lookup::Found("string")));
        assert!(matches!(field("api::core::v1::Container", "imagePullPolicey"), Lookup::Missing(names) if names.contains(&"imagePullPolicy")));
    }
}
