//! Identifiers: conversation ids, request ids, message orders and caller identities (owners).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// A conversation id: chosen by the client (AIP-122: `^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`) or by
/// the server (a lower-case UUID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationId(String);

impl ConversationId {
    /// Parses an id given by a client, in a path or as `conversationId`.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        if is_client_id(text) || is_lower_uuid(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(ApiError::InvalidArgument(format!(
                "conversation id {:?} is invalid: it must match ^[a-z]([a-z0-9-]{{0,61}}[a-z0-9])?$ or be a lower-case UUID",
                shorten(text)
            )))
        }
    }

    /// A fresh random server-chosen id.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// The server-chosen id of a create with a `requestId`: the same for every retry by the same
    /// owner, different for every other owner, so retries land on the same item.
    pub fn for_request(owner: &Owner, request: &RequestId) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"conversations/request-id/v1\0");
        hasher.update(owner.as_str().as_bytes());
        hasher.update(b"\0");
        hasher.update(request.as_str().as_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(uuid::Uuid::new_v8(bytes).to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource name, `conversations/{id}`.
    pub fn name(&self) -> String {
        format!("conversations/{}", self.0)
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_client_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return false;
    };
    if !first.is_ascii_lowercase() || bytes.len() > 63 {
        return false;
    }
    let inner_ok = rest
        .iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let last_ok = rest
        .last()
        .is_none_or(|&b| b.is_ascii_lowercase() || b.is_ascii_digit());
    inner_ok && last_ok
}

fn is_lower_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

/// A client's idempotency key for create (AIP-155): a UUID, kept in its lower-case form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// Parses a UUID in its hyphenated form, any case.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let lower = text.to_ascii_lowercase();
        if is_lower_uuid(&lower) {
            Ok(Self(lower))
        } else {
            Err(ApiError::InvalidArgument(format!(
                "requestId {:?} is not a UUID",
                shorten(text)
            )))
        }
    }

    /// The request id a call carries: its `requestId` query parameter, its `Idempotency-Key`
    /// header (IETF httpapi idempotency-key draft: the UUID bare or as a quoted string, whose
    /// quotes are not part of the key), or both when they agree; both and different is a 400.
    pub fn of_call(query: Option<&str>, header: Option<&str>) -> Result<Option<Self>, ApiError> {
        let header = header
            .map(|h| {
                let h = h.trim();
                let inner = h.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
                Self::parse(inner.unwrap_or(h)).map_err(|_| {
                    ApiError::InvalidArgument(format!(
                        "Idempotency-Key {:?} is not a UUID (bare or in double quotes)",
                        shorten(h)
                    ))
                })
            })
            .transpose()?;
        let query = query.map(Self::parse).transpose()?;
        match (query, header) {
            (Some(q), Some(h)) if q != h => Err(ApiError::InvalidArgument(
                "requestId and Idempotency-Key name different keys; send one, or the same in both"
                    .into(),
            )),
            (q, h) => Ok(q.or(h)),
        }
    }

    /// A request id as stored, trusted.
    #[cfg(feature = "service")]
    pub(crate) fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The identity that owns conversations: the caller (a JWT `sub`, or locally the `X-Owner-Id`
/// header), or the pair (caller, user) when the caller acts for one of its end users
/// (`X-On-Behalf-Of`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    caller: String,
    user: Option<String>,
    /// As responses write it: `{caller}` or `{caller}/{user}`.
    text: String,
}

/// The longest identity accepted from a JWT `sub`, in bytes (it becomes part of a DynamoDB key).
const MAX_SUB_BYTES: usize = 512;

/// `^[A-Za-z0-9._@:-]{1,128}$`: an `X-Owner-Id` or an `X-On-Behalf-Of` value.
pub fn is_header_identity(text: &str) -> bool {
    (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@:-".contains(&b))
}

impl Owner {
    fn caller(caller: String) -> Self {
        Self {
            text: caller.clone(),
            caller,
            user: None,
        }
    }

    /// An identity from the `X-Owner-Id` header: `^[A-Za-z0-9._@:-]{1,128}$`.
    pub fn from_header(text: &str) -> Option<Self> {
        is_header_identity(text).then(|| Self::caller(text.to_owned()))
    }

    /// An identity from a verified JWT's `sub` claim: any non-empty text without control
    /// characters, at most 512 bytes.
    pub fn from_claim(text: &str) -> Option<Self> {
        let ok =
            !text.is_empty() && text.len() <= MAX_SUB_BYTES && !text.chars().any(char::is_control);
        ok.then(|| Self::caller(text.to_owned()))
    }

    /// The pair (this caller, `user`): `user` is an `X-On-Behalf-Of` value,
    /// `^[A-Za-z0-9._@:-]{1,128}$`; none when it is malformed or this owner is already a pair.
    pub fn acting_for(self, user: &str) -> Option<Self> {
        if self.user.is_some() || !is_header_identity(user) {
            return None;
        }
        Some(Self {
            text: format!("{}/{user}", self.caller),
            caller: self.caller,
            user: Some(user.to_owned()),
        })
    }

    /// An owner as stored (the caller, and the user it acted for), trusted.
    #[cfg(feature = "service")]
    pub(crate) fn from_stored(caller: String, user: Option<String>) -> Self {
        match user {
            None => Self::caller(caller),
            Some(user) => Self {
                text: format!("{caller}/{user}"),
                caller,
                user: Some(user),
            },
        }
    }

    /// The owner as responses write it: `{caller}`, or `{caller}/{user}` for a delegated one.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The caller (the JWT `sub` or the `X-Owner-Id`).
    pub fn caller_id(&self) -> &str {
        &self.caller
    }

    /// The end user the caller acts for, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The identity as DynamoDB keys carry it (partition and index keys): the caller with `%`
    /// and `/` escaped (`%25`, `%2F`), then `/{user}` for a delegated owner. A user never holds
    /// `/` or `%`, so the only `/` of a key separates the pair: no caller, and no pair, ever
    /// shares another's key. Most callers (UUIDs, `auth0|…`, header owners) are unchanged.
    pub fn key(&self) -> String {
        let caller = escape_key(&self.caller);
        match &self.user {
            None => caller,
            Some(user) => format!("{caller}/{user}"),
        }
    }
}

/// `%` and `/` percent-escaped; nothing else changes.
fn escape_key(text: &str) -> String {
    if !text.contains(['%', '/']) {
        return text.to_owned();
    }
    text.replace('%', "%25").replace('/', "%2F")
}

/// Cuts user input for echoing in an error message.
pub(crate) fn shorten(text: &str) -> String {
    if text.chars().count() <= 80 {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(77).collect();
        cut.push_str("...");
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_follow_aip_122() {
        for good in [
            "a",
            "ab",
            "a-b",
            "conv-1",
            "a23456789012345678901234567890123456789012345678901234567890123",
        ] {
            assert!(ConversationId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "A",
            "1abc",
            "a-",
            "-a",
            "a_b",
            "a.b",
            "a b",
            "é",
            "a234567890123456789012345678901234567890123456789012345678901234",
        ] {
            assert!(ConversationId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_ids_are_lower_case_uuids_and_are_accepted_back() {
        let id = ConversationId::random();
        assert!(is_lower_uuid(id.as_str()));
        assert_eq!(ConversationId::parse(id.as_str()).ok(), Some(id));
        assert!(ConversationId::parse("0123ABCD-0000-4000-8000-000000000000").is_err());
    }

    #[test]
    fn request_ids_give_the_same_server_id_for_one_owner_and_another_for_the_next() {
        let request = RequestId::parse("6F9619FF-8B86-D011-B42D-00C04FC964FF").expect("uuid");
        assert_eq!(request.as_str(), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
        let alice = Owner::from_header("alice").expect("owner");
        let bob = Owner::from_header("bob").expect("owner");
        let first = ConversationId::for_request(&alice, &request);
        assert_eq!(first, ConversationId::for_request(&alice, &request));
        assert_ne!(first, ConversationId::for_request(&bob, &request));
        assert!(is_lower_uuid(first.as_str()));
        assert!(RequestId::parse("not-a-uuid").is_err());
    }

    #[test]
    fn a_request_id_comes_from_the_query_or_the_idempotency_key_header() {
        let key = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
        let quoted = format!("\"{key}\"");
        let upper = key.to_ascii_uppercase();
        for (query, header) in [
            (Some(key), None),
            (None, Some(key)),
            (None, Some(quoted.as_str())),
            (Some(key), Some(upper.as_str())),
        ] {
            let id = RequestId::of_call(query, header)
                .expect("valid")
                .expect("a key");
            assert_eq!(id.as_str(), key);
        }
        assert_eq!(RequestId::of_call(None, None).expect("none"), None);
        let other = "00000000-0000-4000-8000-000000000000";
        for (query, header) in [
            (Some(key), Some(other)),
            (None, Some("not-a-uuid")),
            (None, Some("\"")),
            (Some("x"), None),
        ] {
            assert_eq!(
                RequestId::of_call(query, header)
                    .expect_err("refused")
                    .status(),
                400
            );
        }
    }

    #[test]
    fn owner_headers_follow_the_contract_pattern() {
        assert!(Owner::from_header("User_1.x@example.com:x-y").is_some());
        assert!(Owner::from_header(&"x".repeat(128)).is_some());
        for bad in ["", "a b", "a/b", "a#b", "ü", &"x".repeat(129)] {
            assert!(Owner::from_header(bad).is_none(), "{bad}");
        }
        assert!(Owner::from_claim("auth0|123").is_some());
        assert!(Owner::from_claim("a\nb").is_none());
    }

    #[test]
    fn a_delegated_owner_is_the_pair_written_caller_slash_user() {
        let caller = Owner::from_claim("svc/1").expect("owner");
        let pair = caller.clone().acting_for("alice").expect("pair");
        assert_eq!(pair.as_str(), "svc/1/alice");
        assert_eq!(pair.caller_id(), "svc/1");
        assert_eq!(pair.user(), Some("alice"));
        assert_eq!(pair.key(), "svc%2F1/alice");
        assert!(
            pair.clone().acting_for("bob").is_none(),
            "no pair of a pair"
        );
        for bad in ["", "a/b", "a%b", "a b", &"u".repeat(129)] {
            assert!(caller.clone().acting_for(bad).is_none(), "{bad:?}");
        }
        // Every combination that could collide keeps its own key.
        let keys = [
            Owner::from_claim("svc").expect("o").key(),
            Owner::from_claim("svc/alice").expect("o").key(),
            Owner::from_claim("svc")
                .and_then(|o| o.acting_for("alice"))
                .expect("o")
                .key(),
            Owner::from_claim("svc")
                .and_then(|o| o.acting_for("bob"))
                .expect("o")
                .key(),
            Owner::from_claim("other")
                .and_then(|o| o.acting_for("alice"))
                .expect("o")
                .key(),
            Owner::from_claim("alice").expect("o").key(),
        ];
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
    }

    #[test]
    fn owner_keys_escape_only_percent_and_slash() {
        let key = |sub: &str| Owner::from_claim(sub).expect("owner").key();
        assert_eq!(key("auth0|abc#def"), "auth0|abc#def");
        assert_eq!(
            key("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
            "6f9619ff-8b86-d011-b42d-00c04fc964ff"
        );
        assert_eq!(key("a/b"), "a%2Fb");
        assert_eq!(key("100%/x"), "100%25%2Fx");
        assert_ne!(
            key("a%2Fb"),
            key("a/b"),
            "an escape-looking sub stays apart"
        );
        assert!(!key("x/y/z").contains('/'));
    }
}
