//! The text of an update mask (AIP-161) or a `fields` list, whichever resource it names: its
//! limits, how a name is trimmed, and the rule of a `metadata.<key>` key. Conversation masks
//! (`field_mask`) and message masks (`message_update`) both build on it.

/// The most paths one `updateMask` may name (after removing duplicates). Each path becomes a
/// clause of the `UpdateItem`'s expressions, which DynamoDB limits to 4 KB each: this bound keeps
/// every mask within it (`store::tests` builds the largest one), so a long mask is a 400 here and
/// never a DynamoDB error.
pub const MAX_MASK_PATHS: usize = 100;
/// The longest `updateMask` accepted, in bytes.
pub const MAX_MASK_BYTES: usize = 4096;

/// A path or field name without the whitespace around it: the six ASCII spaces the spec's
/// patterns allow (`[ \t\n\v\f\r]`), no other (a no-break space is part of the name, so a 400).
pub fn trim_spaces(text: &str) -> &str {
    text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'))
}

/// Whether a `metadata.<key>` key is valid: `^[A-Za-z_][A-Za-z0-9_-]{0,63}$`.
pub fn is_metadata_key(key: &str) -> bool {
    let bytes = key.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.len() <= 63
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ascii_spaces_around_a_name_are_trimmed() {
        assert_eq!(trim_spaces("\x0b\t name \r\n\x0c"), "name");
        assert_eq!(trim_spaces("\u{a0}name"), "\u{a0}name");
    }

    #[test]
    fn a_metadata_key_follows_its_rule() {
        for good in ["a", "_", "A-b_9", &format!("k{}", "x".repeat(63))] {
            assert!(is_metadata_key(good), "{good}");
        }
        for bad in [
            "",
            "1a",
            "-a",
            "a.b",
            "a b",
            &format!("k{}", "x".repeat(64)),
        ] {
            assert!(!is_metadata_key(bad), "{bad}");
        }
    }
}
