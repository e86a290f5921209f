//! A JSON schema (draft-07) of every policy kind, generated from the declarative
//! [`schema`](super::schema) and the [`docs`](super::docs) tables, so that editors using
//! yaml-language-server check the same structure and show the same documentation as
//! `palisade lsp`. `palisade schema` prints it.
//!
//! Every object type of the schema becomes one entry of `definitions` (objects are shared and
//! `foreach` is recursive, so inlining would repeat or never end). A property's documentation
//! depends on where it is used, so it sits next to the `$ref`, wrapped in `allOf` because
//! draft-07 ignores the siblings of a bare `$ref`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::docs::{self, KINDS};
use super::schema::{METADATA, Obj, Ty};
use super::{Classified, classify, spec_schema};

/// The schema of a policy document of any kind this compiler knows.
pub fn json_schema() -> Value {
    let mut generator = Generator::default();
    let metadata = generator.obj(&METADATA, &mut vec!["metadata"]);
    let mut branches = Vec::new();
    for k in KINDS {
        let Some(kind) = kind_of(k.kind, k.api_versions) else { continue };
        let spec = generator.obj(spec_schema(kind), &mut vec!["spec"]);
        branches.push(json!({
            "if": {"properties": {"kind": {"const": k.kind}}, "required": ["kind"]},
            "then": {"properties": {
                "apiVersion": {"enum": k.api_versions},
                "spec": with_doc(spec, docs::field_doc(&["spec"]).unwrap_or_default()),
            }},
        }));
    }
    let kinds: Vec<&str> = KINDS.iter().map(|k| k.kind).collect();
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Palisade policy",
        "description": "Kyverno and Kubernetes admission policy kinds, as Palisade reads them.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": docs::field_doc(&["apiVersion"])},
            "kind": {"enum": kinds, "description": docs::field_doc(&["kind"])},
            "metadata": with_doc(metadata, docs::field_doc(&["metadata"]).unwrap_or_default()),
            "spec": {"type": "object"},
            "status": {"description": docs::field_doc(&["status"])},
        },
        "allOf": branches,
        "definitions": Value::Object(generator.definitions),
    })
}

/// The AST kind of a documented kind, through the same classification the checker uses.
fn kind_of(kind: &str, api_versions: &[&str]) -> Option<super::Kind> {
    let api = api_versions.first()?;
    let text = format!("apiVersion: {api}\nkind: {kind}\n");
    let (docs, _) = crate::syntax::parse(crate::FileId(0), &text);
    let root = &docs.first()?.root;
    match classify(root) {
        Classified::Policy(k) => Some(k),
        _ => None,
    }
}

fn with_doc(schema: Value, doc: &str) -> Value {
    if doc.is_empty() {
        return schema;
    }
    match schema {
        Value::Object(mut m) if !m.contains_key("$ref") => {
            m.insert("description".into(), Value::String(doc.to_owned()));
            Value::Object(m)
        }
        other => json!({"allOf": [other], "description": doc}),
    }
}

#[derive(Default)]
struct Generator {
    definitions: Map<String, Value>,
    /// Definition names by the address of the static `Obj` they describe.
    names: HashMap<usize, String>,
}

impl Generator {
    fn ty(&mut self, ty: &'static Ty, path: &mut Vec<&'static str>) -> Value {
        match ty {
            Ty::Any => json!({}),
            Ty::Str => json!({"type": ["string", "null"]}),
            Ty::Bool => json!({"type": ["boolean", "null"]}),
            Ty::Int => json!({"type": ["integer", "null"]}),
            Ty::IntOrStr => json!({"type": ["integer", "string", "null"]}),
            Ty::Enum(values) => {
                let mut all: Vec<Value> = values.iter().map(|v| json!(v)).collect();
                all.push(Value::Null);
                json!({"enum": all})
            }
            Ty::Obj(obj) => self.obj(obj, path),
            Ty::Dict(inner) => {
                json!({"type": ["object", "null"], "additionalProperties": self.ty(inner, path)})
            }
            Ty::List(inner) => json!({"type": ["array", "null"], "items": self.ty(inner, path)}),
        }
    }

    fn obj(&mut self, obj: &'static Obj, path: &mut Vec<&'static str>) -> Value {
        let addr = std::ptr::from_ref(obj) as usize;
        if let Some(name) = self.names.get(&addr) {
            return json!({"$ref": format!("#/definitions/{name}")});
        }
        let name = self.fresh_name(path);
        self.names.insert(addr, name.clone());
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in obj.fields {
            path.push(field.name);
            let mut schema = self.ty(&field.ty, path);
            let mut doc = docs::field_doc(path).unwrap_or_default().to_owned();
            if let Some(instead) = field.deprecated {
                if !doc.is_empty() {
                    doc.push(' ');
                }
                doc.push_str(&format!("Deprecated: {instead}."));
                if let Value::Object(m) = &mut schema {
                    m.insert("deprecated".into(), Value::Bool(true));
                }
            }
            path.pop();
            if field.required {
                required.push(field.name);
            }
            properties.insert(field.name.to_owned(), with_doc(schema, &doc));
        }
        let mut def = json!({
            "type": ["object", "null"],
            "properties": properties,
            "additionalProperties": obj.open,
        });
        if let Value::Object(m) = &mut def {
            if !required.is_empty() {
                m.insert("required".into(), json!(required));
            }
            let mut exclusive = Vec::new();
            for group in obj.exclusive {
                for (i, a) in group.iter().enumerate() {
                    for b in group.iter().skip(i + 1) {
                        exclusive.push(json!({"not": {"required": [a, b]}}));
                    }
                }
            }
            if !exclusive.is_empty() {
                m.insert("allOf".into(), Value::Array(exclusive));
            }
        }
        self.definitions.insert(name.clone(), def);
        json!({"$ref": format!("#/definitions/{name}")})
    }

    /// A definition name from the path it is first reached by: `spec.rules.validate` gives
    /// `RulesValidate`, with a number added if that is taken.
    fn fresh_name(&self, path: &[&str]) -> String {
        let tail: String = path
            .iter()
            .rev()
            .take(2)
            .rev()
            .map(|s| {
                let mut c = s.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect();
        let base = if tail.is_empty() { "Object".to_owned() } else { tail };
        let mut name = base.clone();
        let mut n = 2;
        while self.definitions.contains_key(&name) || self.names.values().any(|v| *v == name) {
            name = format!("{base}{n}");
            n += 1;
        }
        name
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_branch_and_references_resolve() {
        let schema = json_schema();
        let branches = schema["allOf"].as_array().map_or(0, Vec::len);
        assert_eq!(branches, KINDS.len());
        let defs = schema["definitions"].as_object().cloned().unwrap_or_default();
        let text = schema.to_string();
        for part in text.split("\"#/definitions/").skip(1) {
            let name = part.split('"').next().unwrap_or_default();
            assert!(defs.contains_key(name), "dangling reference {name}");
        }
        // Documentation and deprecation reach the schema.
        assert!(text.contains("Deprecated: use `failureAction` in each validate rule."));
        assert!(text.contains("An overlay pattern the resource must match"));
    }
}
