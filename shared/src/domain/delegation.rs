//! Acting for end users: the delegation scope in a token's `scope` claim, and the
//! `X-On-Behalf-Of` header that turns the caller into the pair (caller, user).

use crate::domain::ids::Owner;
use crate::error::ApiError;

/// The scopes of a `scope` claim that is a string: scope tokens separated by single spaces
/// (RFC 6749, section 3.3). Nothing else separates them and nothing is stripped: a token whose
/// only scope is `x,conversations/act-as` or `"conversations/act-as"` grants neither.
pub fn scope_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(' ').filter(|w| !w.is_empty())
}

/// The scopes of a `scope` claim as an HTTP API (payload 2.0) passes it: always a string, and a
/// claim that was a JSON list rendered as `[a b]` — the elements between the brackets, separated
/// by spaces. Any other text is read as the string claim it is ([`scope_words`]).
pub fn rendered_scope_words(text: &str) -> impl Iterator<Item = &str> {
    let inner = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    scope_words(inner.unwrap_or(text))
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
    fn a_string_claim_is_split_on_spaces_and_nothing_else() {
        fn words(t: &str) -> Vec<&str> {
            scope_words(t).collect()
        }
        assert_eq!(words("openid  a/b c "), ["openid", "a/b", "c"]);
        // Lookalikes stay the single tokens they are.
        assert_eq!(words("x,a/b"), ["x,a/b"]);
        assert_eq!(words("\"a/b\""), ["\"a/b\""]);
        assert_eq!(words("[a/b]"), ["[a/b]"]);
        assert_eq!(words("a/b\tc"), ["a/b\tc"]);
        assert!(words("").is_empty() && words("   ").is_empty());
    }

    #[test]
    fn an_http_api_rendered_list_is_opened_and_split_on_spaces_only() {
        fn words(t: &str) -> Vec<&str> {
            rendered_scope_words(t).collect()
        }
        assert_eq!(words("[a/b c]"), ["a/b", "c"]);
        assert_eq!(words("a/b c"), ["a/b", "c"]);
        assert_eq!(words("[a/b,c]"), ["a/b,c"]);
        assert_eq!(words("[\"a/b\"]"), ["\"a/b\""]);
        assert_eq!(words("[a/b"), ["[a/b"]);
        assert!(words("[]").is_empty());
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
