//! Kubernetes quantities, from `data/primitives/quantity.txt` and `quantity_order.txt`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "data/primitives/lines.rs"]
mod lines;

use std::cmp::Ordering;

use palisade_stdlib::quantity::Quantity;

#[test]
fn parse_and_print() {
    let mut failures = Vec::new();
    for (line, case) in lines::cases("primitives/quantity.txt") {
        let input = lines::text(&case, 0);
        let actual = Quantity::parse(input)
            .map(|q| q.to_string())
            .map_err(|e| e.to_string());
        let expected = match lines::error(&case[1]) {
            Some(message) => Err(message.to_owned()),
            None => Ok(lines::text(&case, 1).to_owned()),
        };
        if actual != expected {
            failures.push(format!(
                "line {line}: {input:?} gave {actual:?}, expected {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ordering() {
    for (line, case) in lines::cases("primitives/quantity_order.txt") {
        let a = Quantity::parse(lines::text(&case, 0)).unwrap();
        let b = Quantity::parse(lines::text(&case, 2)).unwrap();
        let expected = match lines::text(&case, 1) {
            "<" => Ordering::Less,
            "==" => Ordering::Equal,
            _ => Ordering::Greater,
        };
        assert_eq!(a.cmp(&b), expected, "line {line}: {case:?}");
        assert_eq!(a == b, expected == Ordering::Equal, "line {line}");
    }
}

#[test]
fn arithmetic_keeps_the_left_format() {
    let q = |s: &str| Quantity::parse(s).unwrap();
    assert_eq!(
        q("1Gi").checked_add(&q("512Mi")).unwrap().to_string(),
        "1536Mi"
    );
    assert_eq!(q("0").checked_add(&q("1Ki")).unwrap().to_string(), "1Ki");
    assert_eq!(
        q("1").checked_sub(&q("1500m")).unwrap().to_string(),
        "-500m"
    );
    assert_eq!(q("100m").checked_mul_f64(3.0).unwrap().to_string(), "300m");
    assert_eq!(q("10").checked_div_f64(3.0).unwrap().to_string(), "3");
    assert_eq!(q("10.0").checked_div_f64(3.0).unwrap().to_string(), "3300m");
    assert!(q("1").checked_div_f64(0.0).is_none());
    assert_eq!(q("1Gi").as_approximate_f64(), 1_073_741_824.0);
    assert_eq!(q("1500m").as_approximate_f64(), 1.5);
}
