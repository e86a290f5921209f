//! Go to definition, references and document symbols.
//!
//! - Context variables: `{{ name }}` (and `name` in a JMESPath field) goes to the context entry
//!   defining it; references of an entry are its uses in the same document.
//! - Policies: `policyName:` in a PolicyException or binding, and `policy:` in a
//!   kyverno-test.yaml `results` entry, go to the policy's `metadata.name`, in open documents or
//!   YAML files of the workspace; references of a policy name are those mentions.

use std::path::{Path, PathBuf};

use tower_lsp_server::ls_types::{DocumentSymbol, Location, SymbolKind, Uri};

use palisade_compiler::syntax::{Document, Node};

use crate::cursor;
use crate::defs::{self, Def};
use crate::schema::JMESPATH_FIELDS;
use crate::text::LineIndex;

/// A file's text, by URI: an open document, or a file read from the workspace.
pub struct Source {
    pub uri: Uri,
    pub text: String,
}

/// Keys whose value names a policy.
const POLICY_REFERENCES: &[&str] = &["policyName", "policy"];

/// Limits of the workspace walk, so a huge or looping tree cannot stall a request.
const MAX_FILES: usize = 2_000;
const MAX_DEPTH: usize = 8;
const MAX_FILE_BYTES: u64 = 1 << 20;

/// YAML files under `roots` (hidden folders except `.kyverno-test` are skipped).
pub fn workspace_files(roots: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for root in roots {
        walk(root, 0, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH || out.len() >= MAX_FILES {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if out.len() >= MAX_FILES {
            return;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if (!name.starts_with('.') || name == ".kyverno-test") && name != "target" && name != "node_modules" {
                walk(&path, depth + 1, out);
            }
        } else if (name.ends_with(".yaml") || name.ends_with(".yml"))
            && std::fs::metadata(&path).is_ok_and(|m| m.len() <= MAX_FILE_BYTES)
        {
            out.push(path);
        }
    }
}

/// What the cursor points at, for navigation.
enum Target {
    Context(Def),
    Policy(String),
    /// A rule named in a test result (`rule:`) or an exception (`ruleNames:`), with the policy
    /// named next to it, if any.
    Rule { policy: Option<String>, name: String },
}

fn target(text: &str, offset: usize) -> Option<Target> {
    let offset = offset.min(text.len());
    let line_start = text.get(..offset).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    let line_end = text.get(offset..).and_then(|t| t.find('\n')).map_or(text.len(), |i| offset + i);
    let line = text.get(line_start..line_end).unwrap_or("");
    let col = offset.saturating_sub(line_start);
    let cur = cursor::locate(text, offset);
    let key = crate::schema::last_key(&cur.path);
    let docs = defs::parse(text);
    let doc = defs::document_at(&docs, offset);
    // A context entry's own name, or a use of it in an expression.
    if let Some(doc) = doc {
        let entries = defs::context_entries(doc);
        if let Some(def) = entries.iter().find(|d| (d.span.start as usize..=d.span.end as usize).contains(&offset)) {
            return Some(Target::Context(def.clone()));
        }
        let expr = defs::in_template(line, col)
            || (cur.role == cursor::Role::Value && key.is_some_and(|k| JMESPATH_FIELDS.contains(&k)));
        if expr && let Some((chain, _)) = defs::chain_at(line, col) {
            let root = chain.split('.').next().unwrap_or_default();
            if let Some(def) = entries.into_iter().find(|d| d.name == root) {
                return Some(Target::Context(def));
            }
        }
    }
    // A policy name: where a policy is named, or its own `metadata.name`.
    if cur.role == cursor::Role::Value {
        let value = text.get(cur.value_range.clone()).unwrap_or("").trim().trim_matches(['"', '\'']);
        let names_policy = key.is_some_and(|k| POLICY_REFERENCES.contains(&k))
            || cur.path == [cursor::Seg::Key("metadata".into()), cursor::Seg::Key("name".into())];
        if names_policy && !value.is_empty() {
            return Some(Target::Policy(value.to_owned()));
        }
    }
    // A rule name: `rule:` of a test result, or an element of `ruleNames`.
    let in_rule_names = cur.list_item && crate::schema::last_key(&cur.path) == Some("ruleNames");
    if (cur.role == cursor::Role::Value && key == Some("rule")) || in_rule_names {
        let value = text.get(cur.value_range.clone()).unwrap_or("").trim().trim_matches(['"', '\'']);
        if !value.is_empty() {
            let policy = doc.and_then(|d| sibling_policy(&d.root, offset));
            return Some(Target::Rule { policy, name: value.to_owned() });
        }
    }
    None
}

/// The policy named next to the rule reference at `offset`: `policy` of the same test result,
/// or `policyName` of the same exception entry.
fn sibling_policy(node: &Node, offset: usize) -> Option<String> {
    let contains = |n: &Node| (n.span.start as usize) <= offset && offset <= n.span.end as usize;
    let mut found = None;
    let mut visit = |k: &Node, v: &Node| {
        let _ = k;
        if found.is_none() && contains(v) && v.as_map().is_some() {
            let names_rule = v.get("rule").is_some_and(&contains) || v.get("ruleNames").is_some_and(&contains);
            if names_rule {
                found = v.get("policy").or_else(|| v.get("policyName")).and_then(Node::as_str).map(str::to_owned);
            }
        }
    };
    // List elements are not map values, so look at every element of every list as well.
    fn each(node: &Node, depth: usize, f: &mut dyn FnMut(&Node, &Node)) {
        if depth > 256 {
            return;
        }
        if let Some(items) = node.as_seq() {
            for item in items {
                f(item, item);
                each(item, depth + 1, f);
            }
        }
        if let Some(entries) = node.as_map() {
            for (k, v) in entries {
                f(k, v);
                each(v, depth + 1, f);
            }
        }
    }
    each(node, 0, &mut visit);
    found
}

/// Rules named `name` (or whose auto-generated variant is named `name`) in policy documents of
/// `text`, restricted to the policy named `policy` if given.
fn rules_named(uri: &Uri, text: &str, policy: Option<&str>, name: &str) -> Vec<Location> {
    let index = LineIndex::new(text);
    let base = name.strip_prefix("autogen-cronjob-").or_else(|| name.strip_prefix("autogen-")).unwrap_or(name);
    let mut out = Vec::new();
    for doc in defs::parse(text) {
        if crate::schema::doc_kind(text.get(doc.span.range()).unwrap_or("")).kind.is_none() {
            continue;
        }
        if policy.is_some_and(|p| defs::policy_name(&doc).map(|(n, _)| n) != Some(p)) {
            continue;
        }
        let rules = doc.root.get("spec").and_then(|s| s.get("rules")).and_then(Node::as_seq).unwrap_or(&[]);
        for rule in rules {
            if let Some(n) = rule.get("name")
                && (n.as_str() == Some(name) || n.as_str() == Some(base))
            {
                out.push(Location::new(uri.clone(), index.range(text, n.span)));
            }
        }
    }
    out
}

/// Where the symbol at `offset` is defined.
pub fn definition(uri: &Uri, text: &str, offset: usize, others: &dyn Fn() -> Vec<Source>) -> Vec<Location> {
    match target(text, offset) {
        Some(Target::Context(def)) => {
            let index = LineIndex::new(text);
            vec![Location::new(uri.clone(), index.range(text, def.span))]
        }
        Some(Target::Policy(name)) => {
            let mut out = policies_named(uri, text, &name);
            for src in others() {
                if src.uri != *uri {
                    out.extend(policies_named(&src.uri, &src.text, &name));
                }
            }
            out
        }
        Some(Target::Rule { policy, name }) => {
            let mut out = rules_named(uri, text, policy.as_deref(), &name);
            for src in others() {
                if src.uri != *uri {
                    out.extend(rules_named(&src.uri, &src.text, policy.as_deref(), &name));
                }
            }
            out
        }
        None => Vec::new(),
    }
}

/// Every mention of the symbol at `offset` (with its definition when `include_declaration`).
pub fn references(
    uri: &Uri,
    text: &str,
    offset: usize,
    include_declaration: bool,
    others: &dyn Fn() -> Vec<Source>,
) -> Vec<Location> {
    let index = LineIndex::new(text);
    match target(text, offset) {
        Some(Target::Context(def)) => {
            let mut out = Vec::new();
            if include_declaration {
                out.push(Location::new(uri.clone(), index.range(text, def.span)));
            }
            let docs = defs::parse(text);
            let Some(doc) = defs::document_at(&docs, def.span.start as usize) else { return out };
            let span = doc.span.range();
            for range in uses(text, span, &def.name) {
                out.push(Location::new(uri.clone(), index.byte_range(text, range)));
            }
            out
        }
        Some(Target::Policy(name)) => {
            let mut sources = vec![Source { uri: uri.clone(), text: text.to_owned() }];
            sources.extend(others().into_iter().filter(|s| s.uri != *uri));
            let mut out = Vec::new();
            for src in &sources {
                let index = LineIndex::new(&src.text);
                let docs = defs::parse(&src.text);
                for doc in &docs {
                    if include_declaration && let Some((n, span)) = defs::policy_name(doc).filter(|(n, _)| *n == name) {
                        let _ = n;
                        out.push(Location::new(src.uri.clone(), index.range(&src.text, span)));
                    }
                    defs::walk_entries(&doc.root, 0, &mut |k: &Node, v: &Node| {
                        let is_ref = k.as_key().is_some_and(|k| POLICY_REFERENCES.contains(&k.as_ref()));
                        if is_ref && v.as_str() == Some(name.as_str()) {
                            out.push(Location::new(src.uri.clone(), index.range(&src.text, v.span)));
                        }
                    });
                }
            }
            out
        }
        // References of a rule reference are where the rule is defined.
        Some(Target::Rule { .. }) => definition(uri, text, offset, others),
        None => Vec::new(),
    }
}

/// Byte ranges of `name` used as the root of an expression in templates and JMESPath fields of
/// `range`.
fn uses(text: &str, range: std::ops::Range<usize>, name: &str) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let body = text.get(range.clone()).unwrap_or("");
    let mut pos = range.start;
    for line in body.split_inclusive('\n') {
        let mut from = 0;
        while let Some(i) = line.get(from..).and_then(|l| l.find(name)) {
            let at = from + i;
            from = at + name.len();
            let before = line.get(..at).and_then(|b| b.chars().next_back());
            let after = line.get(at + name.len()..).and_then(|a| a.chars().next());
            let bounded = !before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '$'))
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if !bounded {
                continue;
            }
            let in_expr = defs::in_template(line, at + 1) || {
                let trimmed = line.trim_start().trim_start_matches("- ");
                JMESPATH_FIELDS.iter().any(|k| trimmed.starts_with(&format!("{k}:")))
            };
            if in_expr {
                out.push(pos + at..pos + at + name.len());
            }
        }
        pos += line.len();
    }
    out
}

fn policies_named(uri: &Uri, text: &str, name: &str) -> Vec<Location> {
    let index = LineIndex::new(text);
    defs::parse(text)
        .iter()
        .filter(|d| crate::schema::doc_kind(text.get(d.span.range()).unwrap_or("")).kind.is_some())
        .filter_map(defs::policy_name)
        .filter(|(n, _)| *n == name)
        .map(|(_, span)| Location::new(uri.clone(), index.range(text, span)))
        .collect()
}

/// The outline: one symbol per policy document, with its rules (and their context entries).
#[allow(deprecated)] // `DocumentSymbol::deprecated` must be given; it is always `None`.
pub fn symbols(text: &str) -> Vec<DocumentSymbol> {
    let index = LineIndex::new(text);
    let docs = defs::parse(text);
    let mut out = Vec::new();
    for doc in &docs {
        let Some(kind) = doc.root.get("kind").and_then(Node::as_str) else { continue };
        let range = index.range(text, doc.root.span);
        let (name, sel) = defs::policy_name(doc)
            .map_or(("(unnamed)", doc.root.span), |(n, s)| (n, s));
        let mut children = Vec::new();
        let rules = doc.root.get("spec").and_then(|s| s.get("rules")).and_then(Node::as_seq).unwrap_or(&[]);
        for rule in rules {
            let Some(rname) = rule.get("name") else { continue };
            let context = context_symbols(rule, text, &index);
            children.push(DocumentSymbol {
                name: rname.as_str().unwrap_or("(unnamed rule)").to_owned(),
                detail: rule_type(rule).map(str::to_owned),
                kind: SymbolKind::METHOD,
                tags: None,
                deprecated: None,
                range: index.range(text, rule.span),
                selection_range: index.range(text, rname.span),
                children: (!context.is_empty()).then_some(context),
            });
        }
        out.push(DocumentSymbol {
            name: name.to_owned(),
            detail: Some(kind.to_owned()),
            kind: SymbolKind::CLASS,
            tags: None,
            deprecated: None,
            range,
            selection_range: index.range(text, sel),
            children: (!children.is_empty()).then_some(children),
        });
    }
    out
}

#[allow(deprecated)]
fn context_symbols(rule: &Node, text: &str, index: &LineIndex) -> Vec<DocumentSymbol> {
    let doc = Document { root: rule.clone(), span: rule.span, truncated: false };
    defs::context_entries(&doc)
        .into_iter()
        .map(|d| DocumentSymbol {
            name: d.name.clone(),
            detail: Some(d.source.clone()),
            kind: SymbolKind::VARIABLE,
            tags: None,
            deprecated: None,
            range: index.range(text, d.entry),
            selection_range: index.range(text, d.span),
            children: None,
        })
        .collect()
}

fn rule_type(rule: &Node) -> Option<&'static str> {
    palisade_compiler::ast::schema::RULE_TYPES.iter().copied().find(|t| rule.get(t).is_some())
}
