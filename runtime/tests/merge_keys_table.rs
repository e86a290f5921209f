//! Generator of `runtime/src/mutate/merge_keys.tsv`, the strategic-merge keys of the built-in
//! Kubernetes types, derived from the `k8s-openapi` crate's generated sources.
//!
//! `k8s-openapi` is generated from the Kubernetes OpenAPI definitions: its `DeepMerge` impls
//! spell out each list's merge strategy (`list::map` with the merge key, `list::set`,
//! `list::atomic`), its field types give the type graph, and its `Resource` impls give each
//! kind's root type. The test reads those sources where cargo keeps them (or at
//! `PALISADE_K8S_OPENAPI_SRC`, the `src/v1_NN` folder of one version), derives the table and
//! compares it with the committed one; `PALISADE_BLESS=1` rewrites the committed table. The
//! crate is not a dependency of Palisade: only this generator reads it.
//!
//! When no `k8s-openapi` sources are on the machine, the test says so and checks only that the
//! committed table is well formed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/mutate/merge_keys.tsv");

#[derive(Default)]
struct TypeInfo {
    /// Rust field name -> JSON field name.
    json: BTreeMap<String, String>,
    /// Rust field name -> (element or value type, is a list).
    fields: BTreeMap<String, (String, bool)>,
    /// Rust field name -> merge strategy (`key=<rust name>` or `set`).
    strategy: BTreeMap<String, String>,
    /// `(apiVersion, kind)` when the type is a resource.
    resource: Option<(String, String)>,
}

fn find_sources() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PALISADE_K8S_OPENAPI_SRC") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let mut crates: Vec<PathBuf> = std::fs::read_dir(home.join("registry/src"))
        .ok()?
        .filter_map(Result::ok)
        .flat_map(|reg| std::fs::read_dir(reg.path()).into_iter().flatten().filter_map(Result::ok))
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("k8s-openapi-")))
        .collect();
    crates.sort();
    let krate = crates.pop()?;
    let mut versions: Vec<PathBuf> = std::fs::read_dir(krate.join("src"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("v1_")))
        .collect();
    // The newest Kubernetes version: compare the minor number, not the text.
    versions.sort_by_key(|p| p.file_name().and_then(|n| n.to_str()).and_then(|n| n[3..].parse::<u32>().ok()).unwrap_or(0));
    versions.pop()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") && p.file_name().is_some_and(|n| n != "mod.rs") {
            out.push(p);
        }
    }
}

/// The text between the first `open` after `from` and the next `close`.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

fn parse_file(root: &Path, path: &Path, types: &mut BTreeMap<String, TypeInfo>) {
    let text = std::fs::read_to_string(path).unwrap();
    let Some(name) = between(&text, "pub struct ", " {") else { return };
    if name.contains(['<', ' ']) {
        return;
    }
    let module: Vec<String> = path
        .strip_prefix(root)
        .unwrap()
        .parent()
        .unwrap()
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let id = format!("{}::{name}", module.join("::"));
    let mut info = TypeInfo::default();
    let body = between(&text, &format!("pub struct {name} {{"), "\n}").unwrap_or_default();
    for line in body.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("pub ") else { continue };
        let Some((field, ty)) = rest.split_once(": ") else { continue };
        let ty = ty.trim_end_matches(',');
        let ty = ty.strip_prefix("Option<").map(|t| t.strip_suffix('>').unwrap_or(t)).unwrap_or(ty);
        let (ty, list) = match ty.strip_prefix("std::vec::Vec<") {
            Some(t) => (t.strip_suffix('>').unwrap_or(t), true),
            None => (ty, false),
        };
        if let Some(t) = ty.strip_prefix("crate::") {
            info.fields.insert(field.to_owned(), (t.to_owned(), list));
        }
    }
    for line in text.lines().map(str::trim) {
        // `"hostIPC" => Field::Key_host_ipc,` maps JSON names to Rust field names.
        if let Some((json, rest)) = line.strip_prefix('"').and_then(|l| l.split_once("\" => Field::Key_")) {
            info.json.insert(rest.trim_end_matches(',').to_owned(), json.to_owned());
        }
    }
    // `crate::merge_strategies::list::map(&mut self.f, other.f, &[|lhs, rhs| lhs.k == rhs.k, ...`
    let mut rest = text.as_str();
    while let Some(i) = rest.find("crate::merge_strategies::list::") {
        rest = &rest[i + "crate::merge_strategies::list::".len()..];
        let kind: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let Some(field) = between(rest, "&mut self.", ",") else { continue };
        match kind.as_str() {
            "map" => {
                if let Some(key) = between(rest, "|lhs, rhs| lhs.", " ==") {
                    info.strategy.insert(field.to_owned(), format!("key={key}"));
                }
            }
            "set" => {
                info.strategy.insert(field.to_owned(), "set".to_owned());
            }
            _ => {}
        }
    }
    if let (Some(api), Some(kind)) = (
        between(&text, "const API_VERSION: &'static str = \"", "\""),
        between(&text, "const KIND: &'static str = \"", "\""),
    ) {
        info.resource = Some((api.to_owned(), kind.to_owned()));
    }
    types.insert(id, info);
}

/// The table: every kind's root type, and the fields on the way to a list with a merge
/// strategy. Types from which no such list can be reached are left out: the merge treats them
/// like unknown types.
fn generate(root: &Path) -> String {
    let mut files = Vec::new();
    rust_files(root, &mut files);
    files.sort();
    let mut types = BTreeMap::new();
    for f in &files {
        parse_file(root, f, &mut types);
    }
    let mut interesting: BTreeSet<String> =
        types.iter().filter(|(_, t)| !t.strategy.is_empty()).map(|(id, _)| id.clone()).collect();
    loop {
        let before = interesting.len();
        for (id, t) in &types {
            if t.fields.values().any(|(ty, _)| interesting.contains(ty)) {
                interesting.insert(id.clone());
            }
        }
        if interesting.len() == before {
            break;
        }
    }
    let mut out = String::new();
    out.push_str("# Strategic-merge keys of the built-in Kubernetes types, generated by\n");
    out.push_str("# runtime/tests/merge_keys_table.rs from the k8s-openapi crate's sources; do not edit.\n");
    out.push_str("# kind <apiVersion> <Kind> <type>\n# field <type> <json field> <type> <-|key=<json field>|set>\n");
    for (id, t) in &types {
        if let Some((api, kind)) = &t.resource
            && interesting.contains(id)
        {
            out.push_str(&format!("kind\t{api}\t{kind}\t{id}\n"));
        }
    }
    for (id, t) in &types {
        if !interesting.contains(id) {
            continue;
        }
        for (field, (ty, _list)) in &t.fields {
            let strategy = match t.strategy.get(field) {
                Some(s) => match s.strip_prefix("key=") {
                    Some(key) => {
                        let json_key = types.get(ty).and_then(|e| e.json.get(key)).cloned().unwrap_or_else(|| key.to_owned());
                        format!("key={json_key}")
                    }
                    None => s.clone(),
                },
                None if interesting.contains(ty) => "-".to_owned(),
                None => continue,
            };
            let json = t.json.get(field).cloned().unwrap_or_else(|| field.clone());
            out.push_str(&format!("field\t{id}\t{json}\t{ty}\t{strategy}\n"));
        }
    }
    // Lists of strings with a set strategy have no element type in the crate's `crate::` paths;
    // they are found by their strategy alone.
    for (id, t) in &types {
        for (field, s) in &t.strategy {
            if s == "set" && !t.fields.contains_key(field) && interesting.contains(id) {
                let json = t.json.get(field).cloned().unwrap_or_else(|| field.clone());
                out.push_str(&format!("field\t{id}\t{json}\t-\tset\n"));
            }
        }
    }
    out
}

#[test]
fn merge_key_table_matches_the_kubernetes_openapi_data() {
    let source = find_sources();
    if let (Some(src), Some(_)) = (&source, std::env::var_os("PALISADE_BLESS")) {
        std::fs::write(TABLE, generate(src)).unwrap();
    }
    let committed = std::fs::read_to_string(TABLE).unwrap_or_default();
    for line in committed.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(
            matches!((cols.first(), cols.len()), (Some(&"kind"), 4) | (Some(&"field"), 5)),
            "malformed table line: {line}"
        );
    }
    assert!(committed.contains("field\tapi::core::v1::PodSpec\tcontainers\tapi::core::v1::Container\tkey=name"));
    let Some(src) = source else {
        println!("k8s-openapi sources not found; only the committed table's shape was checked");
        return;
    };
    let generated = generate(&src);
    assert!(generated == committed, "merge_keys.tsv is stale; regenerate with PALISADE_BLESS=1 (source: {})", src.display());
}
