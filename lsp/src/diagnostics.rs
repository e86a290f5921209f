//! Diagnostics: the checker's findings (the same `check::check_source` as `palisade check`)
//! turned into LSP diagnostics, with the code, the note and the fix as related information.

use tower_lsp_server::ls_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Uri,
};

use palisade_compiler::check::{self, codes};
use palisade_compiler::{FileId, Severity};

use crate::text::LineIndex;

/// Checks a document's text and converts every finding. Documents of kinds that are not
/// policies (resources, test files) are skipped by the checker with a note; that note says
/// nothing about the text an editor shows, so it is left out here.
pub fn compute(uri: &Uri, text: &str, index: &LineIndex) -> Vec<Diagnostic> {
    let (_, diags) = check::check_source(FileId(0), text);
    diags
        .into_iter()
        .filter(|d| d.code != codes::NOT_A_POLICY)
        .map(|d| convert(uri, text, index, &d))
        .collect()
}

pub fn convert(uri: &Uri, text: &str, index: &LineIndex, d: &palisade_compiler::Diagnostic) -> Diagnostic {
    let range = index.range(text, d.span);
    let mut related = Vec::new();
    if let Some(note) = &d.note {
        related.push(DiagnosticRelatedInformation {
            location: Location::new(uri.clone(), range),
            message: format!("note: {note}"),
        });
    }
    if let Some(fix) = &d.fix {
        let message = match &fix.replacement {
            Some(r) => format!("fix: {} (replace with `{r}`)", fix.message),
            None => format!("help: {}", fix.message),
        };
        related.push(DiagnosticRelatedInformation {
            location: Location::new(uri.clone(), index.range(text, fix.span)),
            message,
        });
    }
    Diagnostic {
        range,
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
            Severity::Note => DiagnosticSeverity::INFORMATION,
        }),
        code: Some(NumberOrString::String(d.code.to_owned())),
        source: Some("palisade".to_owned()),
        message: d.message.clone(),
        related_information: (!related.is_empty()).then_some(related),
        ..Diagnostic::default()
    }
}
