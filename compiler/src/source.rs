//! Source files and spans.
//!
//! A [`Span`] is a byte range in one file of a [`SourceMap`]. Line and column are computed on
//! demand from the file's line index, so spans stay small (12 bytes) and cheap to copy.

use std::sync::Arc;

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A byte range `start..end` in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span { file, start: clamp_u32(start), end: clamp_u32(end.max(start)) }
    }

    /// The smallest span covering both `self` and `other` (which must be in the same file).
    pub fn cover(self, other: Span) -> Span {
        Span { file: self.file, start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// A sub-span at byte offsets relative to this span's start, clamped to this span.
    pub fn sub(self, start: usize, end: usize) -> Span {
        let s = self.start.saturating_add(clamp_u32(start)).min(self.end);
        let e = self.start.saturating_add(clamp_u32(end)).min(self.end).max(s);
        Span { file: self.file, start: s, end: e }
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A 1-based line and column (the column counts characters, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: u32,
    pub column: u32,
}

/// One source file: its name as given by the user, its text, and a line index.
#[derive(Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        let text: Arc<str> = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(
            text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| clamp_u32(i + 1)),
        );
        SourceFile { name: name.into(), text, line_starts }
    }

    /// Line and column of a byte offset; offsets past the end map to the end of the file.
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(clamp_u32(self.text.len()));
        let line = self.line_starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let column = self
            .text
            .get(start as usize..offset as usize)
            .map_or(offset - start, |s| clamp_u32(s.chars().count()));
        LineCol { line: clamp_u32(line + 1), column: column + 1 }
    }

    /// Byte offset of a 1-based line and column (column in characters); clamped to the file.
    pub fn offset(&self, at: LineCol) -> u32 {
        let line = (at.line.max(1) - 1) as usize;
        let Some(&start) = self.line_starts.get(line) else {
            return clamp_u32(self.text.len());
        };
        let rest = self.text.get(start as usize..).unwrap_or("");
        let col = (at.column.max(1) - 1) as usize;
        let bytes: usize = rest
            .chars()
            .take_while(|&c| c != '\n')
            .take(col)
            .map(char::len_utf8)
            .sum();
        start + clamp_u32(bytes)
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: u32) -> &str {
        let i = (line.max(1) - 1) as usize;
        let start = self.line_starts.get(i).copied().unwrap_or(0) as usize;
        let end = self.line_starts.get(i + 1).map_or(self.text.len(), |&e| e as usize);
        self.text.get(start..end).unwrap_or("").trim_end_matches(['\n', '\r'])
    }
}

/// All the files of one compilation.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> SourceMap {
        SourceMap::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        let id = FileId(clamp_u32(self.files.len()));
        self.files.push(SourceFile::new(name, text));
        id
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (FileId(clamp_u32(i)), f))
    }

    /// Start and end of a span as line/column pairs, if its file is known.
    pub fn resolve(&self, span: Span) -> Option<(LineCol, LineCol)> {
        let f = self.get(span.file)?;
        Some((f.line_col(span.start), f.line_col(span.end)))
    }

    pub fn text(&self, span: Span) -> &str {
        self.get(span.file).and_then(|f| f.text.get(span.range())).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_round_trips() {
        let f = SourceFile::new("a.yaml", "ab\nçd\n\nx");
        assert_eq!(f.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(f.line_col(3), LineCol { line: 2, column: 1 });
        // 'ç' is two bytes; the column counts characters.
        assert_eq!(f.line_col(5), LineCol { line: 2, column: 2 });
        assert_eq!(f.line_col(8), LineCol { line: 4, column: 1 });
        assert_eq!(f.offset(LineCol { line: 2, column: 2 }), 5);
        assert_eq!(f.line_text(2), "çd");
        assert_eq!(f.line_col(1000), LineCol { line: 4, column: 2 });
    }
}
