//! Any UTF-8 string through the pattern language's parsers: keys, value expressions, references,
//! the template check. Each must return (never panic, never hang) and keep its spans inside the
//! input on character boundaries, since callers slice the input with them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_compiler::pattern::{
    ConditionKind, TextRange, has_escaped_reference, has_template, parse_key, parse_value_expr,
    scan_references, unclosed_references,
};

fn assert_in(s: &str, span: TextRange) {
    assert!(span.start <= span.end, "inverted span {span} in {s:?}");
    assert!(s.get(span.range()).is_some(), "span {span} outside {s:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };

    let key = parse_key(s);
    assert_in(s, key.name_span);
    assert_eq!(s.get(key.name_span.range()), Some(key.name.as_str()));

    let expr = parse_value_expr(s);
    assert_eq!(expr.raw, s);
    assert!(!expr.alternatives.is_empty());
    for alternative in &expr.alternatives {
        assert_in(s, alternative.span);
        assert!(!alternative.conditions.is_empty());
        for condition in &alternative.conditions {
            assert_in(s, condition.span);
            match &condition.kind {
                ConditionKind::Compare { operand, .. } => {
                    assert_in(s, operand.span);
                    // Operands are trimmed, as Kyverno trims them before comparing.
                    let text = expr.text(operand.span);
                    assert_eq!(text, text.trim());
                }
                ConditionKind::InRange { low, high } | ConditionKind::NotInRange { low, high } => {
                    assert_in(s, low.span);
                    assert_in(s, high.span);
                }
            }
        }
    }
    // Rendering walks every part too.
    let _ = expr.to_string();

    let references = scan_references(s);
    for pair in references.windows(2) {
        if let [a, b] = pair {
            assert!(
                a.span.end <= b.span.start,
                "overlapping references in {s:?}"
            );
        }
    }
    for r in &references {
        assert_in(s, r.span);
    }
    for at in unclosed_references(s, &references) {
        assert!(s.get(at..at + 2) == Some("$("));
    }
    let _ = has_escaped_reference(s);
    let _ = has_template(s);
});
