//! Go duration parsing and printing, from `data/primitives/duration.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "data/primitives/lines.rs"]
mod lines;

use palisade_stdlib::duration::Duration;

#[test]
fn duration_table() {
    let mut failures = Vec::new();
    for (line, case) in lines::cases("primitives/duration.txt") {
        let input = lines::text(&case, 0);
        let actual = Duration::parse(input);
        let ok = match lines::error(&case[1]) {
            Some(message) => {
                actual.as_ref().err().map(ToString::to_string).as_deref() == Some(message)
            }
            None => {
                let nanos = case[1].as_i64().unwrap();
                let printed = lines::text(&case, 2);
                actual
                    .as_ref()
                    .is_ok_and(|d| d.nanos() == nanos && d.to_string() == printed)
            }
        };
        if !ok {
            failures.push(format!(
                "line {line}: {input:?} gave {actual:?} ({})",
                actual.as_ref().map(ToString::to_string).unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
