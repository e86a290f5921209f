#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use expect_test::{Expect, expect};

use super::*;
use crate::source::SourceMap;

/// Renders every node as `line:col-line:col value`, indented by depth, then the diagnostics.
fn check(text: &str, expect: Expect) {
    let mut sources = SourceMap::new();
    let file = sources.add("t.yaml", text);
    let (docs, diags) = parse(file, text);
    let mut out = String::new();
    for doc in &docs {
        let (s, e) = sources.resolve(doc.span).unwrap();
        out.push_str(&format!(
            "document {}:{}-{}:{}\n",
            s.line, s.column, e.line, e.column
        ));
        render(&sources, &doc.root, 1, &mut out);
    }
    for d in &diags {
        let (s, _) = sources.resolve(d.span).unwrap();
        out.push_str(&format!(
            "{}[{}] {}:{}: {}\n",
            d.severity.as_str(),
            d.code,
            s.line,
            s.column,
            d.message
        ));
    }
    expect.assert_eq(&out);
}

fn render(sources: &SourceMap, node: &Node, depth: usize, out: &mut String) {
    let (s, e) = sources.resolve(node.span).unwrap();
    let pad = "  ".repeat(depth);
    let at = format!("{}:{}-{}:{}", s.line, s.column, e.line, e.column);
    match &node.value {
        Value::Seq(items) => {
            out.push_str(&format!("{pad}{at} seq\n"));
            for item in items {
                render(sources, item, depth + 1, out);
            }
        }
        Value::Map(entries) => {
            out.push_str(&format!("{pad}{at} map\n"));
            for (k, v) in entries {
                render(sources, k, depth + 1, out);
                render(sources, v, depth + 2, out);
            }
        }
        Value::Str(s) => {
            let exact = if s.content_offset.is_some() {
                " exact"
            } else {
                ""
            };
            out.push_str(&format!("{pad}{at} {:?} {:?}{exact}\n", s.style, s.text));
        }
        other => out.push_str(&format!("{pad}{at} {other:?}\n")),
    }
}

fn resolves(cases: &[(&str, Value)]) {
    for (text, want) in cases {
        let got = resolve_plain(text);
        let same = match (&got, want) {
            (Value::Float(a), Value::Float(b)) => {
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            }
            _ => &got == want,
        };
        assert!(same, "{text:?} resolved to {got:?}, expected {want:?}");
    }
}

fn s(text: &str) -> Value {
    Value::Str(StrScalar::plain(text))
}

#[test]
fn plain_scalars_resolve_like_go_yaml_v2() {
    resolves(&[
        ("", Value::Null),
        ("~", Value::Null),
        ("NULL", Value::Null),
        ("nil", s("nil")),
        ("yes", Value::Bool(true)),
        ("Y", Value::Bool(true)),
        ("ON", Value::Bool(true)),
        ("off", Value::Bool(false)),
        ("n", Value::Bool(false)),
        ("False", Value::Bool(false)),
        ("tRUE", s("tRUE")),
        ("42", Value::Int(42)),
        ("-7", Value::Int(-7)),
        ("+7", Value::Int(7)),
        ("1_000", Value::Int(1000)),
        ("0x1F", Value::Int(31)),
        ("0o17", Value::Int(15)),
        ("017", Value::Int(15)),
        ("0b101", Value::Int(5)),
        ("08", Value::Float(8.0)),
        ("1.5", Value::Float(1.5)),
        (".5", Value::Float(0.5)),
        ("1e3", Value::Float(1000.0)),
        ("1.", Value::Float(1.0)),
        ("-.inf", Value::Float(f64::NEG_INFINITY)),
        (".NaN", Value::Float(f64::NAN)),
        ("1e", s("1e")),
        ("1Gi", s("1Gi")),
        ("500m", s("500m")),
        ("1.2.3", s("1.2.3")),
        ("2001-12-14", s("2001-12-14")),
        ("-", s("-")),
        ("18446744073709551615", Value::Float(18446744073709551615.0)),
    ]);
}

#[test]
fn spans_of_nested_nodes() {
    check(
        "a: 1\nb:\n  - \"q\\\"x\"\n  - 'it''s'\n  - plain text\nc: {d: [x, y]}\n",
        expect![[r#"
            document 1:1-7:1
              1:1-6:15 map
                1:1-1:2 Plain "a" exact
                  1:4-1:5 Int(1)
                2:1-2:2 Plain "b" exact
                  3:3-5:15 seq
                    3:5-3:11 DoubleQuoted "q\"x"
                    4:5-4:12 SingleQuoted "it's"
                    5:5-5:15 Plain "plain text" exact
                6:1-6:2 Plain "c" exact
                  6:4-6:15 map
                    6:5-6:6 Plain "d" exact
                      6:8-6:14 seq
                        6:9-6:10 Plain "x" exact
                        6:12-6:13 Bool(true)
        "#]],
    );
}

#[test]
fn block_scalars_and_unicode_columns() {
    check(
        "é: ü\nlit: |\n  one\nfold: >\n  a\n  b\n",
        expect![[r#"
            document 1:1-7:1
              1:1-7:1 map
                1:1-1:2 Plain "é" exact
                  1:4-1:5 Plain "ü" exact
                2:1-2:4 Plain "lit" exact
                  3:3-4:1 Literal "one\n" exact
                4:1-4:5 Plain "fold" exact
                  5:3-7:1 Folded "a b\n"
        "#]],
    );
}

#[test]
fn anchors_aliases_and_merge_keys() {
    check(
        "base: &b\n  p: 1\n  q: 2\nuse:\n  <<: *b\n  q: 3\nref: &s text\ncopy: *s\n",
        expect![[r#"
            document 1:1-9:1
              1:1-8:9 map
                1:1-1:5 Plain "base" exact
                  1:7-3:7 map
                    2:3-2:4 Plain "p" exact
                      2:6-2:7 Int(1)
                    3:3-3:4 Plain "q" exact
                      3:6-3:7 Int(2)
                4:1-4:4 Plain "use" exact
                  5:3-6:7 map
                    6:3-6:4 Plain "q" exact
                      6:6-6:7 Int(3)
                    2:3-2:4 Plain "p" exact
                      2:6-2:7 Int(1)
                7:1-7:4 Plain "ref" exact
                  7:9-7:13 Plain "text" exact
                8:1-8:5 Plain "copy" exact
                  8:7-8:9 Plain "text" exact
        "#]],
    );
}

#[test]
fn a_syntax_error_spares_the_other_documents() {
    check(
        "a: 1\n---\nb: [1\n---\nc: 3\n",
        expect![[r#"
            document 1:1-2:1
              1:1-1:5 map
                1:1-1:2 Plain "a" exact
                  1:4-1:5 Int(1)
            document 2:1-4:1
              3:1-3:6 map
                3:1-3:2 Plain "b" exact
                  3:4-3:6 seq
                    3:5-3:6 Int(1)
            document 4:1-6:1
              5:1-5:5 map
                5:1-5:2 Plain "c" exact
                  5:4-5:5 Int(3)
            error[P0001] 4:1: YAML syntax error: while parsing a flow sequence, expected ',' or ']'
        "#]],
    );
}

#[test]
fn undefined_alias_and_bad_indentation() {
    check(
        "a: *nope\n---\nb:\n  c: 1\n d: 2\n",
        expect![[r#"
            document 1:1-2:1
              1:1-1:2 map
                1:1-1:2 Plain "a" exact
                  1:2-1:2 Null
            document 2:1-6:1
              3:1-4:7 map
                3:1-3:2 Plain "b" exact
                  4:3-4:7 map
                    4:3-4:4 Plain "c" exact
                      4:6-4:7 Int(1)
            error[P0001] 1:4: YAML syntax error: while parsing node, found unknown anchor
            error[P0001] 5:2: YAML syntax error: while parsing a block mapping, did not find expected key
        "#]],
    );
}

#[test]
fn alias_bombs_are_bounded() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    let (_, diags) = parse(FileId(0), &text);
    assert!(diags.iter().any(|d| d.code == codes::LIMIT), "{diags:?}");

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (_, diags) = parse(FileId(0), &deep);
    // saphyr stops at its own nesting limit before ours is reached; either way it is an error.
    assert!(diags.iter().any(|d| d.is_error()), "{diags:?}");
}

#[test]
fn json_follows_kubernetes() {
    let docs = parse_json_documents(
        "on: yes\nn: 0x10\nq: \"yes\"\nf: 1.50\nempty:\n---\n---\nx: [1, ~]\n",
    )
    .unwrap();
    expect![[r#"[{"true":true,"false":16,"q":"yes","f":1.5,"empty":null},{"x":[1,null]}]"#]]
        .assert_eq(&serde_json::to_string(&docs).unwrap());
    let err = parse_json_documents("a: [\n").unwrap_err();
    expect!["line 2 column 1: YAML syntax error: while parsing a node, did not find expected node content"].assert_eq(&err);
}

#[test]
fn positions_inside_strings() {
    let text = "k: 'a{{ x }}'\nm: \"esc\\n{{ y }}\"\n";
    let (docs, _) = parse(FileId(0), text);
    let root = &docs[0].root;
    let k = root.get("k").unwrap();
    assert_eq!(&text[k.str_span(1..3).range()], "{{");
    let m = root.get("m").unwrap();
    // An escape breaks the one-to-one mapping, so the whole scalar is the best position.
    assert_eq!(m.str_span(4..6), m.span);
}
