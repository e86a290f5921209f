//! `{{ }}` templates: finding them (`data/template/find.txt`) and substituting them
//! (`data/template/substitute.txt`), with a resolver that looks expressions up in a table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "data/primitives/lines.rs"]
mod lines;

use palisade_stdlib::template::{
    SubstitutionError, find_templates, substitute, substitute_document,
};
use serde_json::{Value, json};

#[test]
fn find() {
    let mut failures = Vec::new();
    for (line, case) in lines::cases("template/find.txt") {
        let text = lines::text(&case, 0);
        let found: Vec<Value> = find_templates(text)
            .iter()
            .map(|t| {
                // The spans must cut the string at character boundaries and enclose the expression.
                assert!(
                    text.get(t.span.clone()).unwrap().starts_with("{{"),
                    "line {line}"
                );
                assert!(t.span.start <= t.expression.start && t.expression.end <= t.span.end);
                json!([t.expression_in(text), t.shallow])
            })
            .collect();
        if Value::Array(found.clone()) != case[1] {
            failures.push(format!("line {line}: {text:?} gave {found:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn resolve<'a>(variables: &'a Value) -> impl FnMut(&str) -> Result<Value, String> + 'a {
    move |expression| {
        variables
            .get(expression)
            .cloned()
            .ok_or_else(|| format!("no {expression}"))
    }
}

#[test]
fn substitute_table() {
    let mut failures = Vec::new();
    for (line, case) in lines::cases("template/substitute.txt") {
        let text = lines::text(&case, 0);
        let actual = substitute(text, resolve(&case[1]));
        let ok = match (lines::error(&case[2]), &actual) {
            (Some("too many rounds"), Err(SubstitutionError::TooManyRounds { .. })) => true,
            (Some(expression), Err(SubstitutionError::Resolver { expression: e, .. })) => {
                e == expression
            }
            (None, Ok(value)) => *value == case[2],
            _ => false,
        };
        if !ok {
            failures.push(format!("line {line}: {text:?} gave {actual:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn documents_substitute_values_and_keys_with_their_paths() {
    let document = json!({
        "metadata": {"name": "{{name}}", "labels": {"{{key}}": "v-{{name}}"}},
        "replicas": "{{count}}",
        "list": ["{{name}}", 1],
    });
    let mut seen = Vec::new();
    let result = substitute_document(&document, |path, expression| {
        seen.push(format!("{path} {expression}"));
        Ok::<_, String>(match expression {
            "name" => json!("web"),
            "key" => json!("app"),
            _ => json!(3),
        })
    })
    .unwrap();
    assert_eq!(
        result,
        json!({
            "metadata": {"name": "web", "labels": {"app": "v-web"}},
            "replicas": 3,
            "list": ["web", 1],
        })
    );
    assert!(
        seen.contains(&"/metadata/labels/{{key}} name".to_owned()),
        "{seen:?}"
    );
    assert!(seen.contains(&"/list/0 name".to_owned()), "{seen:?}");
    let failed = substitute_document(&json!({"a": ["{{x}}"]}), |_, _| Err::<Value, _>("boom"));
    assert_eq!(failed.unwrap_err().path, "/a/0");
}
