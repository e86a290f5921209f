//! Loading the resources `palisade apply` scans: files, folders, multi-document YAML streams
//! (`helm template`, `kustomize build`), `List` documents (`kubectl get -A -o yaml` dumps) and
//! standard input.
//!
//! Every resource keeps the file and line it came from, so that reports and SARIF results can
//! point at the offending manifest. A malformed document is reported with its file and line
//! and skipped; the documents around it are still loaded, because one broken manifest in a
//! dump of fifty thousand must not hide the verdict on the others.

use std::io::BufRead;
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
/// folders skipped), or `-` for standard input (read from `stdin`, at most once). The whole
/// input is held; `palisade apply` streams it instead (see [`DocumentReader`]).
pub fn load_paths(paths: &[PathBuf], stdin: Box<dyn BufRead + Send>) -> Loaded {
    let chunks: Vec<Result<Chunk, LoadError>> = DocumentReader::new(paths.to_vec(), stdin).collect();
    parse_chunks(chunks)
}

/// Parses documents read by a [`DocumentReader`] (in parallel), keeping input order.
pub fn parse_chunks(chunks: Vec<Result<Chunk, LoadError>>) -> Loaded {
    let parts: Vec<Loaded> = chunks
        .into_par_iter()
        .map(|c| match c {
            Ok(chunk) => parse_chunk(&chunk.file, &chunk.text, chunk.first_line),
            Err(e) => Loaded { resources: Vec::new(), errors: vec![e] },
        })
        .collect();
    let mut out = Loaded::default();
    for p in parts {
        out.extend(p);
    }
    out
}

impl Loaded {
    fn extend(&mut self, other: Loaded) {
        self.resources.extend(other.resources);
        self.errors.extend(other.errors);
    }
}

/// One YAML document's text as read, with the file and line it starts on. A `List` dump is
/// one document; its items are split when the document is parsed.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub file: Arc<str>,
    /// The 1-based line of the chunk's first line (its `---` marker, if it has one).
    pub first_line: u32,
    pub text: String,
}

/// Reads the documents of every path one at a time, cutting each stream before its `---`
/// lines as it goes, so a scan holds only the documents it is working on, never a whole
/// input (a `helm template` stream on standard input can be any size). Files are read in the
/// order [`files_under`] gives; a path or file that cannot be read is an error item and the
/// reader goes on with the next one.
pub struct DocumentReader {
    paths: std::vec::IntoIter<PathBuf>,
    files: std::collections::VecDeque<PathBuf>,
    stdin: Option<Box<dyn BufRead + Send>>,
    open: Option<Stream>,
}

impl DocumentReader {
    /// `stdin` is read when a path is `-` (the first such path only).
    pub fn new(paths: Vec<PathBuf>, stdin: Box<dyn BufRead + Send>) -> DocumentReader {
        DocumentReader { paths: paths.into_iter(), files: Default::default(), stdin: Some(stdin), open: None }
    }
}

impl Iterator for DocumentReader {
    type Item = Result<Chunk, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(stream) = &mut self.open {
                match stream.next_chunk() {
                    Some(item) => return Some(item),
                    None => self.open = None,
                }
                continue;
            }
            if let Some(file) = self.files.pop_front() {
                let name = file.display().to_string();
                match std::fs::File::open(&file) {
                    Ok(f) => self.open = Some(Stream::new(&name, Box::new(std::io::BufReader::with_capacity(1 << 16, f)))),
                    Err(e) => return Some(Err(LoadError { file: name, at: None, message: e.to_string() })),
                }
                continue;
            }
            let path = self.paths.next()?;
            if path.as_os_str() == "-" {
                // Standard input can only be read once; a second `-` adds nothing.
                if let Some(stdin) = self.stdin.take() {
                    self.open = Some(Stream::new(STDIN_NAME, stdin));
                }
                continue;
            }
            match files_under(&path) {
                Ok(files) => self.files.extend(files),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// One file or standard input being cut into documents.
struct Stream {
    file: Arc<str>,
    reader: Box<dyn BufRead + Send>,
    /// The number of the next line to be read.
    next_line: u32,
    /// A `---` line already read, which starts the next chunk, with its line number.
    carry: Option<(Vec<u8>, u32)>,
    done: bool,
}

impl Stream {
    fn new(name: &str, reader: Box<dyn BufRead + Send>) -> Stream {
        Stream { file: Arc::from(name), reader, next_line: 1, carry: None, done: false }
    }

    /// The next document's text: everything up to (not including) the next line that starts
    /// with a `---` marker, as `syntax::split_documents` cuts a file held in memory.
    fn next_chunk(&mut self) -> Option<Result<Chunk, LoadError>> {
        if self.done && self.carry.is_none() {
            return None;
        }
        let (mut text, mut first_line) = self.carry.take().unwrap_or_default();
        while !self.done {
            let start = text.len();
            match self.reader.read_until(b'\n', &mut text) {
                Ok(0) => self.done = true,
                Ok(_) => {
                    let line = self.next_line;
                    self.next_line = self.next_line.saturating_add(1);
                    if start == 0 {
                        first_line = line;
                    } else if is_marker(text.get(start..).unwrap_or_default()) {
                        self.carry = Some((text.split_off(start), line));
                        break;
                    }
                }
                Err(e) => {
                    self.done = true;
                    self.carry = None;
                    return Some(Err(LoadError { file: self.file.to_string(), at: Some((self.next_line, 1)), message: e.to_string() }));
                }
            }
        }
        if text.is_empty() {
            return None;
        }
        Some(match String::from_utf8(text) {
            Ok(text) => Ok(Chunk { file: self.file.clone(), first_line, text }),
            Err(e) => {
                let valid = e.as_bytes().get(..e.utf8_error().valid_up_to()).unwrap_or_default();
                let line = valid.iter().filter(|&&b| b == b'\n').count();
                let at = first_line.saturating_add(u32::try_from(line).unwrap_or(u32::MAX));
                Err(LoadError { file: self.file.to_string(), at: Some((at, 1)), message: "the document is not valid UTF-8 (the document is skipped)".into() })
            }
        })
    }
}

/// A line that starts a new document: `---` alone or followed by a space, a tab or the line end.
fn is_marker(line: &[u8]) -> bool {
    line.strip_prefix(b"---").is_some_and(|rest| rest.is_empty() || matches!(rest.first(), Some(b' ' | b'\t' | b'\n' | b'\r')))
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

/// Parses one YAML stream held in memory; a document with a syntax error is reported (file,
/// line, column) and left out.
pub fn parse_text(name: &str, text: &str) -> Loaded {
    let mut stream = Stream::new(name, Box::new(std::io::Cursor::new(text.as_bytes().to_vec())));
    parse_chunks(std::iter::from_fn(|| stream.next_chunk()).collect())
}

/// Parses one document (or a `List` of them).
pub fn parse_chunk(file: &Arc<str>, chunk: &str, first_line: u32) -> Loaded {
    let mut out = Loaded::default();
    // Most manifests are plain YAML, which goes straight to JSON; the rest (and every error)
    // take the spanned parser, which defines the behaviour and the messages.
    if let Some(docs) = syntax::plain::parse_plain(chunk) {
        let at = |(line, col): (u32, u32)| (first_line.saturating_add(line).saturating_sub(1), col);
        for doc in docs {
            push_plain(file, doc, &at, &mut out);
        }
        return out;
    }
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

/// [`push_document`] for a document read by the fast path.
fn push_plain(file: &Arc<str>, doc: syntax::plain::PlainDoc, at: &dyn Fn((u32, u32)) -> (u32, u32), out: &mut Loaded) {
    let mut value = doc.value;
    if !value.is_object() {
        out.errors.push(LoadError {
            file: file.to_string(),
            at: Some(at(doc.at)),
            message: "a resource must be a mapping with apiVersion, kind and metadata (the document is skipped)".into(),
        });
        return;
    }
    let is_list = value.get("kind").and_then(Value::as_str).is_some_and(|k| k.ends_with("List"));
    match value.get("items").filter(|_| is_list) {
        Some(Value::Array(_)) => {
            let items = value.get_mut("items").map(Value::take);
            if let Some(Value::Array(items)) = items {
                for (item, pos) in items.into_iter().zip(doc.items) {
                    push_value(file, item, at(pos), out);
                }
            }
        }
        // `items: null` in an empty dump: nothing to scan.
        Some(Value::Null) => {}
        _ => push_value(file, value, at(doc.at), out),
    }
}

fn push_resource(file: &Arc<str>, node: &Node, at: &dyn Fn(u32) -> (u32, u32), out: &mut Loaded) {
    push_value(file, syntax::to_json(node), at(node.span.start), out);
}

/// Keeps a resource that names its kind and itself, or reports why it cannot be scanned.
fn push_value(file: &Arc<str>, value: Value, (line, col): (u32, u32), out: &mut Loaded) {
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
        let stdin = std::io::Cursor::new(b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n".to_vec());
        let loaded = load_paths(&paths, Box::new(stdin));
        assert_eq!(summary(&loaded), ["stdin:1 Namespace/x", "does/not/exist.yaml: no such file or directory"]);
    }

    #[test]
    fn documents_are_cut_at_marker_lines_only() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: |\n    ---not a marker\n--- # a marker\n---\n\n---\r\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n";
        let mut stream = Stream::new("s.yaml", Box::new(std::io::Cursor::new(text.as_bytes().to_vec())));
        let chunks: Vec<(u32, String)> = std::iter::from_fn(|| stream.next_chunk()).map(|c| c.map(|c| (c.first_line, c.text)).unwrap()).collect();
        expect_test::expect![[r#"
            [
                (
                    1,
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: |\n    ---not a marker\n",
                ),
                (
                    7,
                    "--- # a marker\n",
                ),
                (
                    8,
                    "---\n\n",
                ),
                (
                    10,
                    "---\r\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
                ),
            ]
        "#]]
        .assert_debug_eq(&chunks);
        let loaded = parse_text("s.yaml", text);
        assert_eq!(summary(&loaded), ["s.yaml:1 ConfigMap/a", "s.yaml:11 ConfigMap/b"]);
    }

    #[test]
    fn a_document_that_is_not_utf8_is_skipped_with_its_line() {
        let mut bytes = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\n".to_vec();
        bytes.extend_from_slice(b"metadata: {name: \xff}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n");
        let loaded = load_paths(&[PathBuf::from("-")], Box::new(std::io::Cursor::new(bytes)));
        assert_eq!(
            summary(&loaded),
            ["stdin:1 ConfigMap/a", "stdin:9 ConfigMap/c", "stdin:7:1: the document is not valid UTF-8 (the document is skipped)"]
        );
    }
}
