//! `palisade jp`: query, parse, function and an error, run through the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

fn palisade(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn query_reads_yaml_from_stdin() {
    let doc = "spec:\n  containers:\n  - image: nginx\n  - image: redis\n";
    let (ok, out, _) = palisade(&["jp", "query", "spec.containers[].image | [0]"], doc);
    assert!(ok);
    assert_eq!(out, "\"nginx\"\n");
}

#[test]
fn query_missing_key_is_an_error_in_kyverno_dialect_only() {
    let (ok, out, err) = palisade(&["jp", "query", "metadata.name"], "{}");
    assert!(!ok);
    assert_eq!((out.as_str(), err.as_str()), ("", "error: Unknown key \"metadata\" in path\n"));
    let (ok, out, _) = palisade(&["jp", "query", "--dialect", "standard", "metadata.name"], "{}");
    assert!(ok);
    assert_eq!(out, "null\n");
}

#[test]
fn parse_prints_the_tree() {
    let (ok, out, _) = palisade(&["jp", "parse", "a[0] || to_upper(b)"], "");
    assert!(ok);
    assert_eq!(out, "(or (subexpr (field \"a\") (index 0)) (call to_upper (field \"b\")))\n");
}

#[test]
fn parse_error_points_at_the_column() {
    let (ok, _, err) = palisade(&["jp", "parse", "a.[b"], "");
    assert!(!ok);
    assert_eq!(err, "error: syntax error at column 5: unexpected end of expression, expected `,` or `]`\n  a.[b\n      ^\n");
}

#[test]
fn function_describes_one_or_all() {
    let (ok, out, _) = palisade(&["jp", "function", "truncate"], "");
    assert!(ok);
    assert!(out.starts_with("Name: truncate\nSignature: truncate(str: string, length: number) -> string\n"), "{out}");
    let (ok, out, _) = palisade(&["jp", "function"], "");
    assert!(ok);
    assert!(out.contains("Name: abs\n") && out.contains("Name: regex_match\n"));
    let (ok, _, err) = palisade(&["jp", "function", "nope"], "");
    assert!(!ok);
    assert_eq!(err, "error: unknown function: nope\n");
}
