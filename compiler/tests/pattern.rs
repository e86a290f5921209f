//! Data-driven tests of the pattern language: each input file holds cases (JSON string literals,
//! one per line, `#` comments explaining Kyverno's odd cases), and the expected file holds the
//! same cases with their rendered parse. Run with `UPDATE_EXPECT=1` to rewrite the expectations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::path::Path;

use expect_test::expect_file;
use palisade_compiler::pattern::{
    ConditionKind, Pattern, PatternKind, PatternMode, StrValue, ValueExpr, has_escaped_reference,
    has_template, parse_key, parse_pattern, parse_value_expr, scan_references, unclosed_references,
};
use palisade_compiler::source::{FileId, SourceFile};
use palisade_compiler::syntax;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pattern");

/// Renders every case of `data/pattern/{name}.txt` with `render` into `{name}.expected`.
fn run_cases(name: &str, render: impl Fn(&str) -> String) {
    let input = std::fs::read_to_string(Path::new(DATA).join(format!("{name}.txt"))).unwrap();
    let mut out = String::new();
    for line in input.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            writeln!(out, "{line}").unwrap();
            continue;
        }
        let case: String =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad case {line}: {e}"));
        writeln!(out, "{line}\n  {}", render(&case).replace('\n', "\n  ")).unwrap();
    }
    expect_file![format!("{DATA}/{name}.expected")].assert_eq(&out);
}

fn render_expr(expr: &ValueExpr) -> String {
    let mut out = String::new();
    for (i, alternative) in expr.alternatives.iter().enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        for (j, condition) in alternative.conditions.iter().enumerate() {
            if j > 0 {
                out.push_str(" & ");
            }
            let operand = |span| format!("{:?}@{span}", expr.text(span));
            match &condition.kind {
                ConditionKind::Compare { op, operand: o } => {
                    let op = if op.as_str().is_empty() {
                        "=="
                    } else {
                        op.as_str()
                    };
                    write!(out, "{op} {}", operand(o.span)).unwrap();
                }
                ConditionKind::InRange { low, high } => {
                    write!(out, "in {} to {}", operand(low.span), operand(high.span)).unwrap();
                }
                ConditionKind::NotInRange { low, high } => {
                    write!(
                        out,
                        "not in {} to {}",
                        operand(low.span),
                        operand(high.span)
                    )
                    .unwrap();
                }
            }
        }
    }
    out
}

#[test]
fn values() {
    run_cases("values", |s| {
        let expr = parse_value_expr(s);
        // The runtime needs the untouched string for Kyverno's exact-equality check.
        assert_eq!(expr.raw, s);
        render_expr(&expr)
    });
}

#[test]
fn keys() {
    run_cases("keys", |s| {
        let key = parse_key(s);
        format!("{key} @{}", key.name_span)
    });
}

#[test]
fn references() {
    run_cases("references", |s| {
        let found = scan_references(s);
        let mut out = String::new();
        for r in &found {
            let op = if r.op.as_str().is_empty() {
                "=="
            } else {
                r.op.as_str()
            };
            writeln!(out, "reference {op} {:?} @{}", r.path, r.span).unwrap();
        }
        for at in unclosed_references(s, &found) {
            writeln!(out, "unclosed `$(` at {at}").unwrap();
        }
        if has_escaped_reference(s) {
            writeln!(out, "escaped reference").unwrap();
        }
        if has_template(s) {
            writeln!(out, "template").unwrap();
        }
        if out.is_empty() {
            out.push_str("nothing");
        }
        out.trim_end().to_owned()
    });
}

/// Each `trees/*.yaml` file starts with `# mode: validate` or `# mode: mutate`; the expected file
/// shows the typed tree, then the source with each diagnostic under the line it points at.
#[test]
fn trees() {
    let dir = Path::new(DATA).join("trees");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let mode = if text.starts_with("# mode: mutate") {
            PatternMode::Mutate
        } else {
            PatternMode::Validate
        };
        let (docs, yaml_diags) = syntax::parse(FileId(0), &text);
        assert!(yaml_diags.is_empty(), "{}: {yaml_diags:?}", path.display());
        let (pattern, diags) = parse_pattern(&docs[0].root, mode);
        let mut out = String::new();
        render_tree(&pattern, 0, &mut out);
        out.push_str("\n---\n");
        out.push_str(&annotate(&text, &diags));
        expect_file![path.with_extension("expected")].assert_eq(&out);
    }
}

fn render_tree(pattern: &Pattern, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match &pattern.kind {
        PatternKind::Null => writeln!(out, "{pad}null").unwrap(),
        PatternKind::Bool(b) => writeln!(out, "{pad}bool {b}").unwrap(),
        PatternKind::Int(i) => writeln!(out, "{pad}int {i}").unwrap(),
        PatternKind::Float(f) => writeln!(out, "{pad}float {f}").unwrap(),
        PatternKind::Str(s) => match &s.value {
            StrValue::Expr(e) => writeln!(out, "{pad}expr {}", render_expr(e)).unwrap(),
            StrValue::Literal(l) => writeln!(out, "{pad}literal {l:?}").unwrap(),
            StrValue::Dynamic(d) => writeln!(
                out,
                "{pad}dynamic {:?} (template: {}, references: {}, escape: {}, pattern: {})",
                d.raw,
                d.has_template,
                d.references.len(),
                d.has_escape,
                d.is_pattern
            )
            .unwrap(),
        },
        PatternKind::Seq(items) => {
            writeln!(out, "{pad}list").unwrap();
            for item in items {
                render_tree(item, indent + 1, out);
            }
        }
        PatternKind::Map(entries) => {
            writeln!(out, "{pad}map").unwrap();
            for entry in entries {
                writeln!(out, "{pad}  {}:", entry.key).unwrap();
                render_tree(&entry.value, indent + 2, out);
            }
        }
    }
}

/// The source text with `#   ^^^ severity[code]: message` lines under each diagnostic's start.
fn annotate(text: &str, diags: &[palisade_compiler::Diagnostic]) -> String {
    let file = SourceFile::new("test.yaml", text);
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        writeln!(out, "{line}").unwrap();
        let line_no = u32::try_from(i + 1).unwrap();
        for d in diags {
            let start = file.line_col(d.span.start);
            if start.line != line_no {
                continue;
            }
            let end = file.line_col(d.span.end);
            let width = if end.line == start.line {
                (end.column - start.column).max(1)
            } else {
                1
            };
            let col = start.column as usize;
            let marker = format!(
                "{}{}",
                " ".repeat(col.saturating_sub(1)),
                "^".repeat(width as usize)
            );
            writeln!(
                out,
                "#{} {}[{}]: {}",
                &marker[1.min(marker.len())..],
                d.severity.as_str(),
                d.code,
                d.message
            )
            .unwrap();
            if let Some(fix) = d.fix.as_ref().and_then(|f| f.replacement.as_ref()) {
                writeln!(out, "#   fix: {fix}").unwrap();
            }
        }
    }
    out
}

/// Nesting is cut off at `MAX_DEPTH` with one error, whatever the YAML parser allows.
#[test]
fn deep_patterns_are_cut_off() {
    let depth = palisade_compiler::pattern::MAX_DEPTH + 20;
    let text = format!("{}x{}", "{a: ".repeat(depth), "}".repeat(depth));
    let (docs, yaml_diags) = syntax::parse(FileId(0), &text);
    assert!(yaml_diags.is_empty(), "{yaml_diags:?}");
    let (_, diags) = parse_pattern(&docs[0].root, PatternMode::Validate);
    let codes: Vec<_> = diags.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["P0513"]);
}

/// Spans of a value's conditions map onto the file through the scalar's content offset, for
/// plain and quoted scalars alike.
#[test]
fn condition_spans_point_into_the_file() {
    let text = "a: \">=1Gi | <1\"\nb: 10-1\n";
    let (docs, _) = syntax::parse(FileId(0), text);
    let (_, diags) = parse_pattern(&docs[0].root, PatternMode::Validate);
    let spans: Vec<_> = diags
        .iter()
        .map(|d| (d.code, &text[d.span.range()]))
        .collect();
    assert_eq!(spans, [("P0507", "10-1")]);
    let (pattern, _) = parse_pattern(&docs[0].root, PatternMode::Validate);
    let PatternKind::Map(entries) = &pattern.kind else {
        panic!("not a map")
    };
    let PatternKind::Str(s) = &entries[0].value.kind else {
        panic!("not a string")
    };
    let StrValue::Expr(expr) = &s.value else {
        panic!("not an expression")
    };
    let start = s.content_offset.unwrap() as usize;
    let second = expr.alternatives[1].conditions[0].span;
    assert_eq!(
        &text[start + second.start as usize..start + second.end as usize],
        "<1"
    );
}
