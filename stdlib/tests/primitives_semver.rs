//! Versions and ranges with blang/semver's rules, from `data/primitives/semver.txt`. A case whose
//! expected error is just "version" expects the version (not the range) to be rejected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "data/primitives/lines.rs"]
mod lines;

use palisade_stdlib::semver::{Range, Version};

#[test]
fn semver_table() {
    let mut failures = Vec::new();
    for (line, case) in lines::cases("primitives/semver.txt") {
        let (version, range) = (lines::text(&case, 0), lines::text(&case, 1));
        let outcome = match lines::error(&case[2]) {
            Some("version") => Version::parse(version)
                .is_err()
                .then_some(())
                .ok_or("version parsed".to_owned()),
            Some(message) => match Range::parse(range) {
                Err(e) if e.to_string() == message => Ok(()),
                other => Err(format!("{other:?}")),
            },
            None => {
                let expected = case[2].as_bool().unwrap();
                let v = Version::parse(version).unwrap();
                match Range::parse(range) {
                    Ok(r) if r.matches(&v) == expected => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        };
        if let Err(got) = outcome {
            failures.push(format!("line {line}: {version:?} in {range:?}: got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn versions_print_back() {
    for text in ["1.2.3", "0.0.1-alpha.1", "1.0.0-rc.1+build.7", "10.20.30"] {
        assert_eq!(Version::parse(text).unwrap().to_string(), text);
    }
    for bad in [
        "",
        "1.2",
        "1.2.3-",
        "1.2.3-01",
        "1.2.3+",
        "1.2.3+a..b",
        "1.2.x",
        "a.b.c",
    ] {
        assert!(Version::parse(bad).is_err(), "{bad:?}");
    }
}
