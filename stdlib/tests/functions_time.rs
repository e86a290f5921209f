//! Tests of the `time` function family: the pure functions by value, from
//! `data/functions/time/cases.txt`, and the clock-reading ones by property.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "data/functions/runner.rs"]
mod runner;

use palisade_stdlib::jmespath::{EvalConfig, eval, parse};
use serde_json::Value;

fn query(expr: &str) -> Value {
    eval(&parse(expr).unwrap(), &Value::Null, &EvalConfig::default()).unwrap()
}

#[test]
fn time() {
    assert!(runner::run("time/cases") > 0);
}

#[test]
fn now_is_rfc3339_utc_and_moves_forward() {
    for function in ["time_now()", "time_now_utc()"] {
        let now = query(function);
        let text = now.as_str().unwrap();
        assert!(text.ends_with('Z'), "{text}");
        // It reads back as RFC 3339 and is not in the past of a fixed date.
        let after = query(&format!("time_after('{text}', '2024-01-01T00:00:00Z')"));
        assert_eq!(after, Value::Bool(true), "{text}");
        let utc = query(&format!("time_utc('{text}')"));
        assert_eq!(utc, now);
    }
}

#[test]
fn time_since_without_end_is_measured_to_now() {
    let elapsed = query("time_since('', '2024-01-01T00:00:00Z', '')");
    let text = elapsed.as_str().unwrap();
    // More than a few thousand hours have passed since then, and Go prints hours first.
    let hours: u64 = text.split('h').next().unwrap().parse().unwrap();
    assert!(hours > 1000, "{text}");
    let future = query("time_since('', time_add(time_now(), '1h'), '')");
    assert!(future.as_str().unwrap().starts_with('-'), "{future}");
}
