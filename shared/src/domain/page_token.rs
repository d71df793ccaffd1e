//! Page tokens: opaque, authenticated with HMAC-SHA256, bound to the caller and to the query
//! they continue.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::domain::ids::Owner;
use crate::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

const FORMAT: u8 = 1;
const SCOPE_LEN: usize = 8;
const MAC_LEN: usize = 16;
/// The longest page token accepted, in characters.
pub const MAX_TOKEN_LEN: usize = 1024;

/// The secret that signs page tokens.
#[derive(Clone)]
pub struct TokenKey(Vec<u8>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key from secret bytes.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self(secret.as_ref().to_vec())
    }

    fn mac(&self, owner: &Owner, payload: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        let mut mac = HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        // The owner's key, not its text: `a/b` as a caller and the pair (a, b) share a text.
        let owner = owner.key();
        mac.update(&(owner.len() as u64).to_be_bytes());
        mac.update(owner.as_bytes());
        mac.update(payload);
        mac
    }
}

/// Where the next page starts: the sort key of the last item returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    /// The position, meaningful to the store only.
    pub position: String,
}

fn scope_digest(scope: &str) -> [u8; SCOPE_LEN] {
    let digest = Sha256::digest(scope.as_bytes());
    let mut out = [0u8; SCOPE_LEN];
    out.copy_from_slice(&digest[..SCOPE_LEN]);
    out
}

impl PageToken {
    /// Encodes the token for this caller and query scope.
    pub fn encode(&self, key: &TokenKey, owner: &Owner, scope: &str) -> String {
        let mut payload = Vec::with_capacity(1 + SCOPE_LEN + self.position.len() + MAC_LEN);
        payload.push(FORMAT);
        payload.extend_from_slice(&scope_digest(scope));
        payload.extend_from_slice(self.position.as_bytes());
        let tag = key.mac(owner, &payload).finalize().into_bytes();
        payload.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// Decodes a token: tampered, foreign (another owner's) or reused with another query → 400.
    pub fn decode(
        text: &str,
        key: &TokenKey,
        owner: &Owner,
        scope: &str,
    ) -> Result<Self, ApiError> {
        let invalid = |why: &str| ApiError::InvalidArgument(format!("pageToken is invalid: {why}"));
        if text.len() > MAX_TOKEN_LEN {
            return Err(invalid("it is too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid("it is not a token this service issued"))?;
        if bytes.len() < 1 + SCOPE_LEN + MAC_LEN || bytes[0] != FORMAT {
            return Err(invalid("it is not a token this service issued"));
        }
        let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        key.mac(owner, payload)
            .verify_truncated_left(tag)
            .map_err(|_| invalid("it was altered or was issued to another caller"))?;
        if payload[1..1 + SCOPE_LEN] != scope_digest(scope) {
            return Err(invalid(
                "it was issued for a different filter, orderBy, showDeleted or collection",
            ));
        }
        let position = String::from_utf8(payload[1 + SCOPE_LEN..].to_vec())
            .map_err(|_| invalid("it is not a token this service issued"))?;
        Ok(Self { position })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(name: &str) -> Owner {
        Owner::from_header(name).expect("owner")
    }

    #[test]
    fn a_token_round_trips_for_its_owner_and_scope() {
        let key = TokenKey::new("k");
        let token = PageToken {
            position: "000001#abc".into(),
        };
        let text = token.encode(&key, &owner("alice"), "scope");
        assert_eq!(
            PageToken::decode(&text, &key, &owner("alice"), "scope").expect("valid"),
            token
        );
    }

    #[test]
    fn a_token_is_refused_to_another_owner_another_scope_or_another_key() {
        let key = TokenKey::new("k");
        let text = PageToken {
            position: "p".into(),
        }
        .encode(&key, &owner("alice"), "scope");
        assert_eq!(
            PageToken::decode(&text, &key, &owner("bob"), "scope")
                .expect_err("owner")
                .status(),
            400
        );
        assert_eq!(
            PageToken::decode(&text, &key, &owner("alice"), "other")
                .expect_err("scope")
                .status(),
            400
        );
        assert_eq!(
            PageToken::decode(&text, &TokenKey::new("j"), &owner("alice"), "scope")
                .expect_err("key")
                .status(),
            400
        );
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let key = TokenKey::new("k");
        let text = PageToken {
            position: "000001#abc".into(),
        }
        .encode(&key, &owner("alice"), "scope");
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).expect("base64");
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            let tampered = URL_SAFE_NO_PAD.encode(&bytes);
            assert!(
                PageToken::decode(&tampered, &key, &owner("alice"), "scope").is_err(),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        for junk in ["", "abc", "!!!", &"A".repeat(2000)] {
            assert!(
                PageToken::decode(junk, &key, &owner("alice"), "scope").is_err(),
                "{junk}"
            );
        }
    }
}
