//! The Palisade language server. This is the only crate that knows LSP types; it reuses the
//! compiler's front end and the stdlib's function table rather than parsing anything itself.
//!
//! - [`diagnostics`]: the checker of `palisade check`, on open and on every change;
//! - [`hover`] and [`completion`]: from the compiler's schema and documentation tables and the
//!   stdlib function table; [`cursor`] finds where the cursor is even in half-typed YAML;
//! - [`navigate`]: definition, references and the outline; [`actions`]: quick fixes;
//! - [`lens`]: running a nearby kyverno-test.yaml through a runner the binary passes in.
//!
//! The analysis modules are plain functions of a document's text, so tests and benchmarks call
//! them without a client; [`server`] holds the open documents and speaks the protocol.

#![forbid(unsafe_code)]

pub mod actions;
pub mod completion;
pub mod cursor;
pub mod defs;
pub mod diagnostics;
pub mod hover;
pub mod lens;
pub mod navigate;
pub mod schema;
pub mod server;
pub mod text;

pub use lens::{TestRunner, TestSummary};
/// The protocol types, for tests and tools that drive the analysis functions directly.
pub use tower_lsp_server::ls_types;
pub use server::Config;

/// Serves LSP over standard input and output until the client exits.
pub fn run_stdio(config: Config) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let (service, socket) =
            tower_lsp_server::LspService::new(move |client| server::Backend::new(client, config));
        tower_lsp_server::Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
            .serve(service)
            .await;
    });
    Ok(())
}
