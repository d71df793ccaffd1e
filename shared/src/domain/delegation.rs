//! Acting for end users: the delegation scope in a token's `scope` claim, and the
//! `X-On-Behalf-Of` header that turns the caller into the pair (caller, user).

use crate::domain::ids::Owner;
use crate::error::ApiError;

/// The scopes of a `scope` claim's text: separated by spaces (RFC 6749, section 3.3), or, in a
/// list that API Gateway rendered as text, `[a b]` or `[a,b]`, by spaces or commas.
pub fn scope_words(text: &str) -> impl Iterator<Item = &str> {
    let text = text.trim();
    let text = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    text.split(|c: char| c.is_ascii_whitespace() || c == ',')
        .map(|w| w.trim_matches('"'))
        .filter(|w| !w.is_empty())
}

/// The owner of a request from its caller and the values of its `X-On-Behalf-Of` header, once
/// the caller's right to send it is established: none → the caller; one well-formed user
/// (`^[A-Za-z0-9._@:-]{1,128}$`) → the pair; anything else → 400.
pub fn acting_for(caller: Owner, values: &[&[u8]]) -> Result<Owner, ApiError> {
    let malformed = || {
        ApiError::InvalidArgument(
            "X-On-Behalf-Of must name one user, ^[A-Za-z0-9._@:-]{1,128}$".into(),
        )
    };
    match values {
        [] => Ok(caller),
        [user] => std::str::from_utf8(user)
            .ok()
            .and_then(|user| caller.acting_for(user))
            .ok_or_else(malformed),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_split_on_spaces_and_rendered_lists_are_opened() {
        fn words(t: &str) -> Vec<&str> {
            scope_words(t).collect()
        }
        assert_eq!(words("openid  a/b\tc "), ["openid", "a/b", "c"]);
        assert_eq!(words("[a/b c]"), ["a/b", "c"]);
        assert_eq!(words("[a/b,c]"), ["a/b", "c"]);
        assert_eq!(words(r#"["a/b", "c"]"#), ["a/b", "c"]);
        assert!(words("").is_empty() && words("[]").is_empty());
    }

    #[test]
    fn one_well_formed_user_makes_the_pair_anything_else_is_400() {
        let caller = || Owner::from_header("svc").expect("owner");
        assert_eq!(acting_for(caller(), &[]).expect("caller"), caller());
        let pair = acting_for(caller(), &[b"alice"]).expect("pair");
        assert_eq!(pair.as_str(), "svc/alice");
        for bad in [
            &[b"" as &[u8]][..],
            &[b"a/b"],
            &[b"\xff"],
            &[b"alice", b"bob"],
            &[b"alice", b"alice"],
        ] {
            let err = acting_for(caller(), bad).expect_err("malformed");
            assert_eq!(err.status(), 400);
        }
    }
}
