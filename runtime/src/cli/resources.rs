//! Loading the resources `palisade apply` scans: files, folders, multi-document YAML streams
//! (`helm template`, `kustomize build`), `List` documents (`kubectl get -A -o yaml` dumps) and
//! standard input.
//!
//! Every resource keeps the file and line it came from, so that reports and SARIF results can
//! point at the offending manifest. A malformed document is reported with its file and line
//! and skipped; the documents around it are still loaded, because one broken manifest in a
//! dump of fifty thousand must not hide the verdict on the others.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value;

use palisade_compiler::source::SourceMap;
use palisade_compiler::syntax::{self, Node};

/// The name resources read from standard input are reported under.
pub const STDIN_NAME: &str = "stdin";

/// One resource and where it was written.
#[derive(Clone, Debug)]
pub struct Resource {
    pub value: Value,
    /// The file as the user named it (or [`STDIN_NAME`]).
    pub file: Arc<str>,
    /// The 1-based line where the resource's mapping starts.
    pub line: u32,
}

impl Resource {
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn api_version(&self) -> &str {
        self.value.get("apiVersion").and_then(Value::as_str).unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
    }

    /// The namespace written in the manifest, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.value.pointer("/metadata/namespace").and_then(Value::as_str).filter(|s| !s.is_empty())
    }
}

/// Why a file or a document could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    /// 1-based line and column, when the error is inside the file.
    pub at: Option<(u32, u32)>,
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            Some((line, col)) => write!(f, "{}:{line}:{col}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Resources and errors, in input order.
#[derive(Debug, Default)]
pub struct Loaded {
    pub resources: Vec<Resource>,
    pub errors: Vec<LoadError>,
}

/// Loads every path: a file, a folder (every `.yaml`, `.yml` and `.json` file below it, hidden
/// folders skipped), or `-` for standard input (read by `stdin`, called at most once).
pub fn load_paths(paths: &[PathBuf], stdin: &mut dyn FnMut() -> std::io::Result<String>) -> Loaded {
    let mut out = Loaded::default();
    let mut stdin_read = false;
    for path in paths {
        if path.as_os_str() == "-" {
            if stdin_read {
                continue;
            }
            stdin_read = true;
            match stdin() {
                Ok(text) => out.extend(parse_text(STDIN_NAME, &text)),
                Err(e) => out.errors.push(LoadError { file: STDIN_NAME.into(), at: None, message: e.to_string() }),
            }
            continue;
        }
        let files = match files_under(path) {
            Ok(f) => f,
            Err(e) => {
                out.errors.push(e);
                continue;
            }
        };
        for file in files {
            let name = file.display().to_string();
            match std::fs::read_to_string(&file) {
                Ok(text) => out.extend(parse_text(&name, &text)),
                Err(e) => out.errors.push(LoadError { file: name, at: None, message: e.to_string() }),
            }
        }
    }
    out
}

impl Loaded {
    fn extend(&mut self, other: Loaded) {
        self.resources.extend(other.resources);
        self.errors.extend(other.errors);
    }
}

/// The files a path stands for, sorted so runs are reproducible.
pub fn files_under(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let err = |message: String| LoadError { file: path.display().to_string(), at: None, message };
    let meta = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound { err("no such file or directory".into()) } else { err(e.to_string()) }
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![(path.to_owned(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        // Bounded so that a symlink loop cannot keep the walk going forever.
        if depth > 32 {
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| LoadError { file: dir.display().to_string(), at: None, message: e.to_string() })?;
        let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                stack.push((p, depth + 1));
            } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses one YAML stream. Documents are cut at their `---` markers and parsed in parallel;
/// a document with a syntax error is reported (file, line, column) and left out.
pub fn parse_text(name: &str, text: &str) -> Loaded {
    let file: Arc<str> = Arc::from(name);
    // The 1-based line every chunk starts on, counted once in a sequential pass.
    let chunks = syntax::split_documents(text);
    let mut starts = Vec::with_capacity(chunks.len());
    let mut line = 1u32;
    let mut pos = 0usize;
    for &(start, end) in &chunks {
        let skipped = text.as_bytes().get(pos..start).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
        line = line.saturating_add(u32::try_from(skipped).unwrap_or(u32::MAX));
        pos = start;
        starts.push((start, end, line));
    }
    let parts: Vec<Loaded> = starts
        .par_iter()
        .map(|&(start, end, first_line)| match text.get(start..end) {
            Some(chunk) => parse_chunk(&file, chunk, first_line),
            None => Loaded::default(),
        })
        .collect();
    let mut out = Loaded::default();
    for p in parts {
        out.extend(p);
    }
    out
}

fn parse_chunk(file: &Arc<str>, chunk: &str, first_line: u32) -> Loaded {
    let mut out = Loaded::default();
    let mut map = SourceMap::new();
    let id = map.add(file.to_string(), chunk);
    let (docs, diags) = syntax::parse(id, chunk);
    let at = |offset: u32| -> (u32, u32) {
        let lc = map.get(id).map(|f| f.line_col(offset)).unwrap_or(palisade_compiler::source::LineCol { line: 1, column: 1 });
        (first_line.saturating_add(lc.line).saturating_sub(1), lc.column)
    };
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        out.errors.push(LoadError {
            file: file.to_string(),
            at: Some(at(d.span.start)),
            message: format!("{} (the document is skipped)", d.message),
        });
        return out;
    }
    for doc in &docs {
        push_document(file, &doc.root, &at, &mut out);
    }
    out
}

/// Adds a document's resource, or the items of a `List`, each with its own line.
fn push_document(file: &Arc<str>, root: &Node, at: &dyn Fn(u32) -> (u32, u32), out: &mut Loaded) {
    match &root.value {
        syntax::Value::Null => {}
        syntax::Value::Map(_) => {
            let kind = root.get("kind").and_then(Node::as_str).unwrap_or_default();
            let items = root.get("items").filter(|_| kind.ends_with("List"));
            match items.map(|i| &i.value) {
                Some(syntax::Value::Seq(items)) => {
                    for item in items {
                        push_resource(file, item, at, out);
                    }
                }
                // `items: null` or `items: []` in an empty dump: nothing to scan.
                Some(syntax::Value::Null) => {}
                _ => push_resource(file, root, at, out),
            }
        }
        _ => out.errors.push(LoadError {
            file: file.to_string(),
            at: Some(at(root.span.start)),
            message: "a resource must be a mapping with apiVersion, kind and metadata (the document is skipped)".into(),
        }),
    }
}

fn push_resource(file: &Arc<str>, node: &Node, at: &dyn Fn(u32) -> (u32, u32), out: &mut Loaded) {
    let (line, col) = at(node.span.start);
    let value = syntax::to_json(node);
    let missing: Vec<&str> = ["apiVersion", "kind"]
        .into_iter()
        .filter(|k| value.get(*k).and_then(Value::as_str).is_none_or(str::is_empty))
        .collect();
    let problem = if !value.is_object() {
        Some("a resource must be a mapping with apiVersion, kind and metadata".to_string())
    } else if !missing.is_empty() {
        Some(format!("the resource has no {}", missing.join(" and ")))
    } else if value.pointer("/metadata/name").and_then(Value::as_str).is_none_or(str::is_empty)
        && value.pointer("/metadata/generateName").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        Some("the resource has no metadata.name".to_string())
    } else {
        None
    };
    match problem {
        Some(message) => out.errors.push(LoadError { file: file.to_string(), at: Some((line, col)), message: format!("{message} (the document is skipped)") }),
        None => out.resources.push(Resource { value, file: file.clone(), line }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn summary(l: &Loaded) -> Vec<String> {
        let mut v: Vec<String> = l.resources.iter().map(|r| format!("{}:{} {}/{}", r.file, r.line, r.kind(), r.name())).collect();
        v.extend(l.errors.iter().map(ToString::to_string));
        v
    }

    #[test]
    fn documents_lists_and_broken_documents_keep_their_lines() {
        let text = "\
# rendered by helm
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: broken
  labels: {a: [1, 2}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata:
    name: s1
- apiVersion: v1
  kind: Service
  metadata:
    name: s2
---
just a string
---
kind: Pod
metadata:
  name: no-api-version
---
apiVersion: v1
kind: Pod
metadata:
  name: last
";
        let loaded = parse_text("dump.yaml", text);
        expect_test::expect![[r#"
            [
                "dump.yaml:3 ConfigMap/a",
                "dump.yaml:17 Service/s1",
                "dump.yaml:21 Service/s2",
                "dump.yaml:32 Pod/last",
                "dump.yaml:12:20: YAML syntax error: while parsing a flow sequence, expected ',' or ']' (the document is skipped)",
                "dump.yaml:26:1: a resource must be a mapping with apiVersion, kind and metadata (the document is skipped)",
                "dump.yaml:28:1: the resource has no apiVersion (the document is skipped)",
            ]
        "#]]
        .assert_debug_eq(&summary(&loaded));
    }

    #[test]
    fn missing_paths_are_errors_and_stdin_is_read_once() {
        let paths = [PathBuf::from("does/not/exist.yaml"), PathBuf::from("-"), PathBuf::from("-")];
        let mut calls = 0;
        let mut stdin = || {
            calls += 1;
            Ok("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n".to_string())
        };
        let loaded = load_paths(&paths, &mut stdin);
        assert_eq!(calls, 1);
        assert_eq!(summary(&loaded), ["stdin:1 Namespace/x", "does/not/exist.yaml: no such file or directory"]);
    }
}
