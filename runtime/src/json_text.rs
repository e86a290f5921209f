//! JSON string literals, written eight bytes at a time and byte for byte as serde_json writes
//! them (`"`, `\` and the C0 controls escaped, `\b \t \n \f \r` by name, the other controls as
//! `\u00xx` in lower-case hex, everything else, DEL and non-ASCII included, as it is).
//!
//! An admission response carries the denial text and the warnings, kilobytes for a resource that
//! fails many rules, and serde_json's escaper looks every byte up in a table: at saturation it
//! was the webhook's largest single cost after the policies themselves. Here a word of eight
//! bytes is tested for any byte that needs escaping at once, and the runs between such bytes
//! (in denial text, newlines every line or so) are copied whole.

/// `0x01` in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte.
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The escapes of the C0 controls, by byte.
const CONTROL: [&str; 32] = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r",
    "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019",
    "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
];

/// The high bit of the bytes of `w` (little-endian) that may need escaping. The lowest bit set
/// is exact (borrows only run towards higher bytes, so a false mark can only follow a true
/// one), which is all the scan needs: it finds the first byte to escape and goes on from there.
#[inline]
fn marks(w: u64) -> u64 {
    let control = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = w ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGHS
}

/// The escape of one byte, or `None` when it is written as it is.
#[inline]
fn escape_of(b: u8) -> Option<&'static str> {
    match b {
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        _ => CONTROL.get(usize::from(b)).copied(),
    }
}

/// Hands `s`, escaped for a JSON string, to `push` in pieces: runs of `s` and escapes. Runs are
/// cut only before and after ASCII bytes, so every piece is whole UTF-8.
#[inline]
fn escape(s: &str, mut push: impl FnMut(&str)) {
    let bytes = s.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let word: Option<[u8; 8]> = bytes.get(i..i + 8).and_then(|c| c.try_into().ok());
        let escaped = match word {
            Some(word) => {
                let m = marks(u64::from_le_bytes(word));
                if m == 0 {
                    i += 8;
                    continue;
                }
                i += (m.trailing_zeros() / 8) as usize;
                bytes.get(i).copied().and_then(escape_of)
            }
            None => bytes.get(i).copied().and_then(escape_of),
        };
        match escaped {
            Some(e) => {
                push(s.get(start..i).unwrap_or_default());
                push(e);
                i += 1;
                start = i;
            }
            None => i += 1,
        }
    }
    push(s.get(start..).unwrap_or_default());
}

/// Appends `s` as a JSON string literal, quotes included.
pub fn write(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escape(s, |piece| out.extend_from_slice(piece.as_bytes()));
    out.push(b'"');
}

/// [`write`] into a `String`.
pub fn push(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    escape(s, |piece| out.push_str(piece));
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(s: &str) -> String {
        let mut out = Vec::new();
        write(&mut out, s);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn escapes_as_serde_json_does() {
        for s in ["", "plain", "a\"b\\c", "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} \u{7f}", "é\u{2028}\u{85}ü\"", "12345678\n12345678\"x"] {
            assert_eq!(written(s), serde_json::to_string(s).unwrap_or_default(), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_serde_json(s in "[a \"\\\\\n\t\u{0}-\u{1f}\u{7f}é\u{85}\u{2028}]{0,80}") {
            proptest::prop_assert_eq!(written(&s), serde_json::to_string(&s).unwrap_or_default());
            let mut pushed = String::new();
            push(&mut pushed, &s);
            proptest::prop_assert_eq!(pushed, serde_json::to_string(&s).unwrap_or_default());
        }

        #[test]
        fn agrees_on_any_text(s in "\\PC{0,64}|[\u{0}-\u{ff}]{0,64}") {
            proptest::prop_assert_eq!(written(&s), serde_json::to_string(&s).unwrap_or_default());
        }
    }
}
