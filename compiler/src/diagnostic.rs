//! Diagnostics: plain data. Rendering (codespan, JSON, LSP) happens at the edges.

use crate::source::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Something Kyverno would reject, or that cannot work as written.
    Error,
    /// Accepted, but deprecated, suspicious or likely not what was meant.
    Warning,
    /// Information, e.g. a document of an unknown kind that was skipped.
    Note,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// A suggested fix: replace the text at `span` with `replacement` (or just advise, if `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fix {
    pub message: String,
    pub span: Span,
    pub replacement: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// A stable code such as `P0101`; see `check::codes` for the list.
    pub code: &'static str,
    pub severity: Severity,
    pub span: Span,
    pub message: String,
    pub note: Option<String>,
    pub fix: Option<Fix>,
}

impl Diagnostic {
    pub fn new(code: &'static str, severity: Severity, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { code, severity, span, message: message.into(), note: None, fix: None }
    }

    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(code, Severity::Error, span, message)
    }

    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(code, Severity::Warning, span, message)
    }

    pub fn note_only(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic::new(code, Severity::Note, span, message)
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn with_fix(mut self, message: impl Into<String>, span: Span, replacement: Option<String>) -> Self {
        self.fix = Some(Fix { message: message.into(), span, replacement });
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
