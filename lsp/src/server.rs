//! The LSP front: the `LanguageServer` implementation that keeps open documents and calls the
//! analysis modules. No analysis happens here; handlers copy what they need out of the shared
//! state and never hold its lock across an `await`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use crate::lens::{self, RUN_TESTS, TestRunner, TestSummary};
use crate::navigate::{self, Source};
use crate::text::Document;
use crate::{actions, completion, diagnostics, hover};

/// How the binary configures the server.
#[derive(Clone, Default)]
pub struct Config {
    /// Runs kyverno-test.yaml files for code lenses; without it, no lenses are offered.
    pub test_runner: Option<TestRunner>,
}

/// The longest a test run started from a lens may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    docs: HashMap<Uri, Document>,
    roots: Vec<PathBuf>,
    /// The last result of each test file run from a lens.
    results: HashMap<PathBuf, TestSummary>,
    /// Whether the client accepts snippets in completion items.
    snippets: bool,
}

pub struct Backend {
    client: Client,
    config: Config,
    state: Arc<Mutex<State>>,
}

impl Backend {
    pub fn new(client: Client, config: Config) -> Backend {
        Backend { client, config, state: Arc::default() }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave the maps half-updated in a way that
        // matters more than losing the server, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn doc(&self, uri: &Uri) -> Option<Document> {
        self.state().docs.get(uri).cloned()
    }

    async fn publish(&self, uri: Uri) {
        let Some(doc) = self.doc(&uri) else { return };
        let diags = diagnostics::compute(&uri, &doc.text, &doc.index);
        self.client.publish_diagnostics(uri, diags, Some(doc.version)).await;
    }

    /// Other files for cross-file navigation: open documents, then YAML files of the workspace
    /// folders and of the folder of `uri`.
    fn sources(&self, uri: &Uri) -> Vec<Source> {
        let (open, mut roots) = {
            let st = self.state();
            let open: Vec<Source> =
                st.docs.iter().map(|(u, d)| Source { uri: u.clone(), text: d.text.clone() }).collect();
            (open, st.roots.clone())
        };
        if let Some(dir) = uri.to_file_path().and_then(|p| p.parent().map(Path::to_path_buf)) {
            roots.push(dir);
        }
        let mut out = open;
        for path in navigate::workspace_files(&roots) {
            let Some(file_uri) = Uri::from_file_path(&path) else { continue };
            if out.iter().any(|s| s.uri == file_uri) {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.push(Source { uri: file_uri, text });
            }
        }
        out
    }

    async fn run_tests(&self, test: PathBuf) -> Option<TestSummary> {
        let runner = self.config.test_runner.clone()?;
        let path = test.clone();
        let job = tokio::task::spawn_blocking(move || runner(&path));
        let summary = match tokio::time::timeout(TEST_TIMEOUT, job).await {
            Ok(Ok(summary)) => summary,
            Ok(Err(_)) => TestSummary { error: Some("the test run failed".into()), ..TestSummary::default() },
            Err(_) => TestSummary {
                error: Some(format!("timed out after {} s", TEST_TIMEOUT.as_secs())),
                ..TestSummary::default()
            },
        };
        self.state().results.insert(test, summary.clone());
        Some(summary)
    }
}

fn offset_of(doc: &Document, pos: Position) -> usize {
    doc.index.offset(&doc.text, pos)
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        #[allow(deprecated)] // Older clients send only `rootUri`.
        if roots.is_empty()
            && let Some(root) = params.root_uri.as_ref().and_then(|u| u.to_file_path())
        {
            roots.push(root.into_owned());
        }
        let snippets = params
            .capabilities
            .text_document
            .as_ref()
            .and_then(|t| t.completion.as_ref())
            .and_then(|c| c.completion_item.as_ref())
            .and_then(|i| i.snippet_support)
            .unwrap_or(false);
        {
            let mut st = self.state();
            st.roots = roots;
            st.snippets = snippets;
        }
        let lenses = self.config.test_runner.is_some();
        Ok(InitializeResult {
            server_info: Some(ServerInfo { name: "palisade".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..TextDocumentSyncOptions::default()
                })),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some([".", "{", " ", ":", "("].map(String::from).to_vec()),
                    ..CompletionOptions::default()
                }),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                document_symbol_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                    code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
                    ..CodeActionOptions::default()
                })),
                code_lens_provider: lenses.then_some(CodeLensOptions { resolve_provider: Some(false) }),
                execute_command_provider: lenses.then(|| ExecuteCommandOptions {
                    commands: vec![RUN_TESTS.to_owned()],
                    ..ExecuteCommandOptions::default()
                }),
                ..ServerCapabilities::default()
            },
            ..InitializeResult::default()
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        self.state().docs.insert(doc.uri.clone(), Document::new(doc.text, doc.version));
        self.publish(doc.uri).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        {
            let mut st = self.state();
            let Some(doc) = st.docs.get_mut(&uri) else { return };
            for change in params.content_changes {
                doc.apply(change);
            }
            doc.version = params.text_document.version;
        }
        self.publish(uri).await;
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        // A saved policy or test file makes earlier test results stale.
        if let Some(path) = params.text_document.uri.to_file_path() {
            let tests = lens::test_files_for(&path);
            let mut st = self.state();
            for t in tests {
                st.results.remove(&t);
            }
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        self.state().docs.remove(&uri);
        self.client.publish_diagnostics(uri, Vec::new(), None).await;
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let p = params.text_document_position_params;
        let Some(doc) = self.doc(&p.text_document.uri) else { return Ok(None) };
        Ok(hover::hover(&doc.text, &doc.index, offset_of(&doc, p.position)))
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let p = params.text_document_position;
        let Some(doc) = self.doc(&p.text_document.uri) else { return Ok(None) };
        let snippets = self.state().snippets;
        let items = completion::complete_for(&doc.text, &doc.index, offset_of(&doc, p.position), snippets);
        Ok(Some(CompletionResponse::Array(items)))
    }

    async fn goto_definition(&self, params: GotoDefinitionParams) -> Result<Option<GotoDefinitionResponse>> {
        let p = params.text_document_position_params;
        let uri = p.text_document.uri;
        let Some(doc) = self.doc(&uri) else { return Ok(None) };
        let locations = navigate::definition(&uri, &doc.text, offset_of(&doc, p.position), &|| self.sources(&uri));
        Ok((!locations.is_empty()).then_some(GotoDefinitionResponse::Array(locations)))
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let p = params.text_document_position;
        let uri = p.text_document.uri;
        let Some(doc) = self.doc(&uri) else { return Ok(None) };
        let found = navigate::references(
            &uri,
            &doc.text,
            offset_of(&doc, p.position),
            params.context.include_declaration,
            &|| self.sources(&uri),
        );
        Ok(Some(found))
    }

    async fn document_symbol(&self, params: DocumentSymbolParams) -> Result<Option<DocumentSymbolResponse>> {
        let Some(doc) = self.doc(&params.text_document.uri) else { return Ok(None) };
        Ok(Some(DocumentSymbolResponse::Nested(navigate::symbols(&doc.text))))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri;
        let Some(doc) = self.doc(&uri) else { return Ok(None) };
        let range = offset_of(&doc, params.range.start)..offset_of(&doc, params.range.end);
        let found = actions::actions(&uri, &doc.text, range);
        Ok(Some(found.into_iter().map(CodeActionOrCommand::CodeAction).collect()))
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        if self.config.test_runner.is_none() {
            return Ok(None);
        }
        let Some(path) = params.text_document.uri.to_file_path().map(|p| p.into_owned()) else {
            return Ok(None);
        };
        let tests = lens::test_files_for(&path);
        // Show results inline: run each test file once, the first time its lens is asked for.
        for t in &tests {
            let known = self.state().results.contains_key(t);
            if !known {
                self.run_tests(t.clone()).await;
            }
        }
        let results = self.state().results.clone();
        Ok(Some(lens::lenses(&tests, &|t| results.get(t).cloned())))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        if params.command != RUN_TESTS {
            return Ok(None);
        }
        let Some(path) = params.arguments.first().and_then(|a| a.as_str()).map(PathBuf::from) else {
            return Ok(None);
        };
        let Some(summary) = self.run_tests(path.clone()).await else { return Ok(None) };
        let mut message = format!("{}: {}", path.display(), summary.title());
        for f in summary.failures.iter().take(10) {
            message.push_str(&format!("\n{f}"));
        }
        let level = if summary.failed == 0 && summary.error.is_none() { MessageType::INFO } else { MessageType::WARNING };
        self.client.show_message(level, message).await;
        // Ask the client to fetch lenses again so the new result shows; old clients may refuse.
        // It runs on its own so a client that never answers cannot hold this command up.
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.code_lens_refresh().await;
        });
        Ok(Some(serde_json::json!({
            "passed": summary.passed,
            "failed": summary.failed,
            "error": summary.error,
            "failures": summary.failures,
        })))
    }
}
