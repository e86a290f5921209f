//! The Helm chart in `deploy/helm/palisade`, rendered and checked without Helm (Debian does not
//! package it): a small renderer for the template subset the chart uses (values and release
//! fields, `if`/`else`/`end`, `quote`, `toYaml`, `nindent`, `required`, whitespace trimming). A
//! construct outside that subset fails the test, so the chart cannot drift into something this
//! check does not understand. The rendered documents are parsed as YAML and checked for what a
//! cluster needs, and every `palisade serve` flag the chart passes is checked against `--help`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

const PALISADE: &str = env!("CARGO_BIN_EXE_palisade");

fn chart() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/palisade")
}

fn lookup<'a>(ctx: &'a Value, path: &str) -> &'a Value {
    let mut v = ctx;
    for part in path.trim_start_matches('.').split('.') {
        v = v.get(part).unwrap_or(&Value::Null);
    }
    v
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Splits a pipeline on `|` outside string literals, and a command into words.
fn words(cmd: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in cmd.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn operand(ctx: &Value, word: &str) -> Value {
    if let Some(lit) = word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        return Value::String(lit.to_owned());
    }
    assert!(word.starts_with('.'), "unsupported operand {word:?}");
    lookup(ctx, word).clone()
}

fn pipeline(ctx: &Value, expr: &str) -> Result<Value, String> {
    let mut stages = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in expr.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '|' if !quoted => stages.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    stages.push(cur);
    let mut value = Value::Null;
    for (i, stage) in stages.iter().enumerate() {
        let w = words(stage.trim());
        if i == 0 {
            assert_eq!(w.len(), 1, "unsupported expression {stage:?}");
            value = operand(ctx, &w[0]);
            continue;
        }
        value = match (w[0].as_str(), &w[1..]) {
            ("quote", []) => Value::String(serde_json::to_string(&text(&value)).unwrap()),
            ("toYaml", []) => Value::String(serde_yaml_ng::to_string(&value).unwrap().trim_end().to_owned()),
            ("nindent", [n]) => {
                let pad = " ".repeat(n.parse().unwrap());
                Value::String(format!("\n{}", text(&value).lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")))
            }
            ("required", [msg]) => {
                if !truthy(&value) {
                    return Err(operand(ctx, msg).as_str().unwrap().to_owned());
                }
                value
            }
            (f, _) => panic!("unsupported template function {f:?}"),
        };
    }
    Ok(value)
}

/// Renders one template with Go template whitespace rules for `{{-` and `-}}`.
fn render(template: &str, ctx: &Value) -> Result<String, String> {
    let mut out = String::new();
    // Each entry: whether this branch is being emitted.
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let emitting = |stack: &Vec<(bool, bool)>| stack.iter().all(|(parent_on, on)| *parent_on && *on);
    let mut rest = template;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut literal = &rest[..start];
        if trim_next {
            literal = literal.trim_start();
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("unclosed action");
        let mut action = &after[..end];
        if let Some(a) = action.strip_prefix('-') {
            literal = literal.trim_end();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix('-') {
            trim_next = true;
            action = a;
        }
        if emitting(&stack) {
            out.push_str(literal);
        }
        let action = action.trim();
        if let Some(cond) = action.strip_prefix("if ") {
            let on = emitting(&stack) && truthy(&pipeline(ctx, cond)?);
            stack.push((emitting(&stack), on));
        } else if action == "else" {
            let top = stack.last_mut().expect("else without if");
            top.1 = !top.1;
        } else if action == "end" {
            stack.pop().expect("end without if");
        } else if emitting(&stack) {
            out.push_str(&text(&pipeline(ctx, action)?));
        }
        rest = &after[end + 2..];
    }
    assert!(stack.is_empty(), "unclosed if");
    out.push_str(if trim_next { rest.trim_start() } else { rest });
    Ok(out)
}

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Renders every template with the chart's values plus `overrides`; returns the documents.
fn render_chart(overrides: Value) -> Result<Vec<Value>, String> {
    let mut values: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(chart().join("values.yaml")).unwrap()).unwrap();
    merge(&mut values, &overrides);
    let chart_meta: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap()).unwrap();
    let ctx = json!({"Values": values, "Release": {"Name": "palisade", "Namespace": "palisade"}, "Chart": chart_meta});
    let mut names: Vec<_> = std::fs::read_dir(chart().join("templates")).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let mut docs = Vec::new();
    for path in names {
        let rendered = render(&std::fs::read_to_string(&path).unwrap(), &ctx)?;
        for doc in serde_yaml_ng::Deserializer::from_str(&rendered) {
            let v: Value = serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}\n{rendered}", path.display()));
            if !v.is_null() {
                docs.push(v);
            }
        }
    }
    Ok(docs)
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Option<&'a Value> {
    docs.iter().find(|d| d["kind"] == kind)
}

fn container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment").unwrap()["spec"]["template"]["spec"]["containers"][0]
}

fn args(docs: &[Value]) -> Vec<String> {
    container(docs)["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect()
}

/// Every `--flag` the chart passes must be a flag of `palisade serve`.
fn assert_real_flags(args: &[String]) {
    let help = Command::new(PALISADE).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for a in args.iter().filter(|a| a.starts_with("--")) {
        let flag = a.split('=').next().unwrap();
        assert!(help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")), "{flag} is not a `palisade serve` flag:\n{help}");
    }
}

#[test]
fn the_default_values_serve_a_bundle_from_a_configmap() {
    let docs = render_chart(json!({})).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Deployment", "PodDisruptionBudget", "Service"]);
    let deploy = find(&docs, "Deployment").unwrap();
    assert_eq!(deploy["spec"]["replicas"], 3);
    let a = args(&docs);
    assert_eq!(a, ["serve", "--addr=0.0.0.0:9443", "--tls-cert=/tls/tls.crt", "--tls-key=/tls/tls.key", "--bundle=/bundle/policies.plb"]);
    assert_real_flags(&a);
    let c = container(&docs);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["resources"]["limits"]["memory"], "256Mi");
    assert!(c.get("env").is_none());
    let volumes = &deploy["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[1], json!({"name": "bundle", "configMap": {"name": "palisade-bundle"}}));
    assert_eq!(find(&docs, "PodDisruptionBudget").unwrap()["spec"]["minAvailable"], 2);
    assert_eq!(find(&docs, "Service").unwrap()["spec"]["ports"][0]["port"], 443);
    // The PDB and the Service select the Deployment's pods.
    let labels = &deploy["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&find(&docs, "Service").unwrap()["spec"]["selector"], labels);
    assert_eq!(&find(&docs, "PodDisruptionBudget").unwrap()["spec"]["selector"]["matchLabels"], labels);
}

#[test]
fn an_oci_reference_is_verified_with_the_given_key() {
    let pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
    let docs = render_chart(json!({"bundle": {"oci": {"reference": "registry.example/team/bundle:prod", "publicKey": pem, "pullSecret": "regcred"}}})).unwrap();
    let a = args(&docs);
    assert_eq!(&a[4..], ["--bundle=oci://registry.example/team/bundle:prod", "--bundle-key=/bundle-key/cosign.pub", "--poll-interval-secs=60"]);
    assert_real_flags(&a);
    assert_eq!(container(&docs)["env"], json!([{"name": "DOCKER_CONFIG", "value": "/docker"}]));
    let key = find(&docs, "ConfigMap").unwrap();
    assert_eq!(key["metadata"]["name"], "palisade-bundle-key");
    assert_eq!(key["data"]["cosign.pub"], pem);
    let volumes = &find(&docs, "Deployment").unwrap()["spec"]["template"]["spec"]["volumes"];
    assert_eq!(volumes[1], json!({"name": "bundle-key", "configMap": {"name": "palisade-bundle-key"}}));
    assert_eq!(volumes[2]["secret"], json!({"secretName": "regcred", "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}));
}

#[test]
fn an_oci_reference_without_a_key_does_not_render() {
    let err = render_chart(json!({"bundle": {"oci": {"reference": "registry.example/team/bundle:prod"}}})).unwrap_err();
    assert_eq!(err, "bundle.oci.publicKey is required with bundle.oci.reference");
}

#[test]
fn the_manifest_patch_for_an_oci_bundle_uses_real_flags() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/oci-bundle-patch.yaml");
    let patch: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let c = &patch["spec"]["template"]["spec"]["containers"][0];
    let a: Vec<String> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert!(a.contains(&"--bundle-key=/bundle-key/cosign.pub".to_owned()), "{a:?}");
    assert_real_flags(&a);
    // The ConfigMap mount and volume of palisade.yaml are removed by their merge keys.
    assert_eq!(c["volumeMounts"][1], json!({"mountPath": "/bundle", "$patch": "delete"}));
    assert_eq!(patch["spec"]["template"]["spec"]["volumes"][1], json!({"name": "bundle", "$patch": "delete"}));
}
