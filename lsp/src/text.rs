//! Open documents and position conversion.
//!
//! The compiler speaks byte offsets; LSP speaks lines and UTF-16 code units (the protocol's
//! default encoding, which every client supports). [`LineIndex`] converts both ways and clamps
//! positions a client sends past the end of a line or the file, so a stale or hostile position
//! cannot index out of bounds.

use tower_lsp_server::ls_types::{Position, Range, TextDocumentContentChangeEvent};

use palisade_compiler::Span;

/// Byte offsets of line starts in one text.
#[derive(Clone, Debug)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        line_starts.extend(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i + 1));
        LineIndex { line_starts }
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The byte range of line `line` (0-based), without its line break.
    pub fn line_range(&self, text: &str, line: usize) -> std::ops::Range<usize> {
        let start = self.line_starts.get(line).copied().unwrap_or(text.len()).min(text.len());
        let end = self.line_starts.get(line + 1).map_or(text.len(), |&e| e.saturating_sub(1));
        let end = end.clamp(start, text.len());
        let end = if text.as_bytes().get(end.wrapping_sub(1)) == Some(&b'\r') && end > start {
            end - 1
        } else {
            end
        };
        start..end
    }

    /// The LSP position of a byte offset (clamped to the text).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.line_starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let start = self.line_starts.get(line).copied().unwrap_or(0).min(offset);
        let character: usize = text.get(start..offset).map_or(0, |s| s.chars().map(char::len_utf16).sum());
        Position::new(to_u32(line), to_u32(character))
    }

    /// The byte offset of an LSP position, clamped to its line and to the text.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let line = pos.line as usize;
        if line >= self.line_starts.len() {
            return text.len();
        }
        let range = self.line_range(text, line);
        let line_text = text.get(range.clone()).unwrap_or("");
        let mut units = 0usize;
        for (i, c) in line_text.char_indices() {
            if units >= pos.character as usize {
                return range.start + i;
            }
            units += c.len_utf16();
        }
        range.end
    }

    pub fn range(&self, text: &str, span: Span) -> Range {
        Range::new(self.position(text, span.start as usize), self.position(text, span.end as usize))
    }

    pub fn byte_range(&self, text: &str, range: std::ops::Range<usize>) -> Range {
        Range::new(self.position(text, range.start), self.position(text, range.end))
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// An open document.
#[derive(Clone, Debug)]
pub struct Document {
    pub text: String,
    pub version: i32,
    pub index: LineIndex,
}

impl Document {
    pub fn new(text: String, version: i32) -> Document {
        let index = LineIndex::new(&text);
        Document { text, version, index }
    }

    /// Applies one change, full or incremental, as the client sent it.
    pub fn apply(&mut self, change: TextDocumentContentChangeEvent) {
        match change.range {
            None => self.text = change.text,
            Some(range) => {
                let start = self.index.offset(&self.text, range.start);
                let end = self.index.offset(&self.text, range.end).max(start);
                self.text.replace_range(start..end, &change.text);
            }
        }
        self.index = LineIndex::new(&self.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_round_trip_and_clamping() {
        let text = "a: é😀b\nsecond\r\nlast";
        let index = LineIndex::new(text);
        // `é` is one UTF-16 unit, the emoji two.
        let b = text.find('b').unwrap_or_default();
        assert_eq!(index.position(text, b), Position::new(0, 6));
        assert_eq!(index.offset(text, Position::new(0, 6)), b);
        assert_eq!(index.offset(text, Position::new(1, 100)), text.find('\r').unwrap_or_default());
        assert_eq!(index.offset(text, Position::new(9, 0)), text.len());
        // An offset inside a character maps to the character's start.
        assert_eq!(index.position(text, 5), Position::new(0, 4));
    }

    #[test]
    fn incremental_edits() {
        let mut doc = Document::new("kind: Pod\n".into(), 1);
        doc.apply(TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(0, 6), Position::new(0, 9))),
            range_length: None,
            text: "ClusterPolicy".into(),
        });
        assert_eq!(doc.text, "kind: ClusterPolicy\n");
        // A range past the end is clamped instead of panicking.
        doc.apply(TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(5, 0), Position::new(3, 2))),
            range_length: None,
            text: "x".into(),
        });
        assert_eq!(doc.text, "kind: ClusterPolicy\nx");
    }
}
