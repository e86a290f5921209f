//! Kyverno's dialect of JMESPath: where a missing key is an error and where it is absorbed.
//! The cases are in `data/functions/dialect.txt`; limits and the public API are tested here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "data/functions/runner.rs"]
mod runner;

use palisade_stdlib::functions;
use palisade_stdlib::jmespath::{Dialect, ErrorKind, EvalConfig, eval, parse};
use serde_json::json;

#[test]
fn dialect_cases() {
    assert!(runner::run("dialect") > 0);
}

#[test]
fn unknown_key_is_recognisable() {
    let expr = parse("a.b").unwrap();
    let err = eval(&expr, &json!({}), &EvalConfig::kyverno()).unwrap_err();
    assert!(err.is_unknown_key());
    assert_eq!(err.to_string(), "Unknown key \"a\" in path");
}

#[test]
fn syntax_errors_point_at_the_token() {
    let err = parse("a.[b").unwrap_err();
    assert_eq!(err.offset, 4);
    let err = parse("foo bar").unwrap_err();
    assert_eq!((err.offset, err.message.as_str()), (4, "unexpected identifier `bar`"));
    let err = parse("a = b").unwrap_err();
    assert_eq!(err.offset, 2);
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
    assert_eq!(parse(&deep).unwrap_err().message, "expression too deeply nested");
    let long_chain = vec!["a"; 100_000].join(".");
    assert_eq!(parse(&long_chain).unwrap_err().message, "expression too deeply nested");
    let nots = format!("{}a", "!".repeat(100_000));
    assert_eq!(parse(&nots).unwrap_err().message, "expression too deeply nested");
}

#[test]
fn budget_bounds_blow_ups() {
    // Every pipe stage doubles the data: 2^40 values if nothing stopped it.
    let doubling = vec!["[@, @]"; 40].join(" | ");
    let expr = parse(&doubling).unwrap();
    let cfg = EvalConfig { fuel: 1_000_000, ..EvalConfig::kyverno() };
    let err = eval(&expr, &json!({"a": 1}), &cfg).unwrap_err();
    assert_eq!((err.kind, err.to_string().as_str()), (ErrorKind::BudgetExceeded, "evaluation budget exceeded"));
}

#[test]
fn calls_are_listed_with_spans() {
    let expr = parse("length(a) > `0` && to_upper(b[0])").unwrap();
    let calls: Vec<_> = expr.calls().map(|c| (c.name, c.args_len, c.name_span.start, c.span.end)).collect();
    assert_eq!(calls, vec![("length", 1, 0, 9), ("to_upper", 1, 19, 33)]);
}

#[test]
fn the_table_resolves_overrides_by_dialect() {
    // The arithmetic family may not be filled in yet; the lookup rule holds either way.
    let kyverno_sum = functions::lookup_in(Dialect::Kyverno, "sum").unwrap();
    let standard_sum = functions::lookup_in(Dialect::Standard, "sum").unwrap();
    assert_eq!(standard_sum.dialect, Dialect::Standard);
    let overridden = functions::all().any(|d| d.name == "sum" && d.dialect == Dialect::Kyverno);
    assert_eq!(kyverno_sum.dialect == Dialect::Kyverno, overridden);
    assert!(functions::lookup_in(Dialect::Standard, "to_upper").is_none());
    assert_eq!(functions::lookup("to_upper").unwrap().signature(), "to_upper(str: string) -> string");
    // Every example in the table evaluates to true (against an empty object, so that literal
    // lists like `['a']` select something in both dialects).
    for decl in functions::all() {
        let visible = functions::lookup_in(decl.dialect, decl.name).is_some_and(|d| std::ptr::eq(d, decl));
        if !visible || decl.example.is_empty() {
            continue;
        }
        let cfg = EvalConfig { dialect: decl.dialect, ..EvalConfig::default() };
        let expr = parse(decl.example).unwrap_or_else(|e| panic!("{}: {e}", decl.name));
        let result = eval(&expr, &json!({}), &cfg).unwrap_or_else(|e| panic!("{}: {e}", decl.name));
        assert_eq!(result, json!(true), "example of {}: {}", decl.name, decl.example);
    }
}

/// `jmespath::call` on values answers as the call expression with those values as literals
/// does: the result, and for bad arguments the same error.
#[test]
fn call_on_values_is_the_call_expression() {
    let cfg = EvalConfig::kyverno();
    let cases = [
        ("to_upper", vec![json!("net_raw")]),
        ("length", vec![json!([1, 2, 3])]),
        ("join", vec![json!(", "), json!(["a", "b"])]),
        ("contains", vec![json!(["a"]), json!("a")]),
        ("to_upper", vec![json!(3)]),
        ("length", vec![]),
        ("no_such_function", vec![json!(1)]),
    ];
    for (name, args) in cases {
        let literals: Vec<String> = args.iter().map(|a| format!("`{a}`")).collect();
        let source = format!("{name}({})", literals.join(", "));
        let expected = parse(&source).map_err(|e| e.to_string()).and_then(|e| eval(&e, &json!(null), &cfg).map_err(|e| e.to_string()));
        let actual = palisade_stdlib::jmespath::call(name, &args, &cfg).map_err(|e| e.to_string());
        assert_eq!(actual, expected, "{source}");
    }
}
