//! JSON string literals, written eight bytes at a time and byte for byte as serde_json writes
//! them (`"`, `\` and the C0 controls escaped, `\b \t \n \f \r` by name, the other controls as
//! `\u00xx` in lower-case hex, everything else, DEL and non-ASCII included, as it is).
//!
//! An admission response carries the denial text and the warnings, kilobytes for a resource that
//! fails many rules, and serde_json's escaper looks every byte up in a table: at saturation it
//! was the webhook's largest single cost after the policies themselves. Here a word of eight
//! bytes is tested for any byte that needs escaping at once, and the runs between such bytes
//! (in denial text, newlines every line or so) are copied whole.

/// The escapes of the C0 controls, by byte.
const CONTROL: [&str; 32] = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r",
    "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019",
    "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
];

/// The end of the run of string bytes from `at` that need no attention: the position of the
/// first `"`, `\` or control character (or the end of the input). These are the bytes a JSON
/// string cannot hold as they are, so the document parser ([`crate::doc`]) and the writer below
/// share this scan. Eight bytes at a time, with the classic bit tricks: a byte of `w ^ 0x22..22`
/// is zero exactly where `w` holds a quote, and `x - 0x01..01 & !x & 0x80..80` marks zero bytes
/// (borrows can mark bytes above the first zero too, never below it, so the lowest mark is
/// exact). Bytes below 0x20 are found the same way against 0x20; UTF-8 bytes (0x80 and up) are
/// never marked.
pub(crate) fn plain_run(src: &[u8], mut at: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = src.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*chunk);
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
        let marks = zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if marks != 0 {
            return at + (marks.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&c) = src.get(at) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        at += 1;
    }
    at
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
    let mut start = 0;
    loop {
        let end = plain_run(bytes, start);
        push(s.get(start..end).unwrap_or_default());
        // Past the run is a byte to escape, or the end.
        let Some(e) = bytes.get(end).copied().and_then(escape_of) else { break };
        push(e);
        start = end + 1;
    }
}

/// Appends `s` as a JSON string literal, quotes included.
pub fn write(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escape(s, |piece| out.extend_from_slice(piece.as_bytes()));
    out.push(b'"');
}

/// Appends `s` escaped for the inside of a JSON string literal, without quotes: for text
/// written in pieces into one literal (the webhook's denial text).
pub fn write_escaped(out: &mut Vec<u8>, s: &str) {
    escape(s, |piece| out.extend_from_slice(piece.as_bytes()));
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
