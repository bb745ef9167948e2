//! API keys and the master key: issuing, parsing and verifying secrets. Keys look like
//! `riq_<key-id>_<secret>` (docs/administration.md, STYLE.md #5): the id finds the record in one
//! look-up, and only a SHA-256 hash of the high-entropy secret is stored, compared in constant
//! time.

pub mod scope;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::{self, ApiKeyId, IdKind};

pub const KEY_PREFIX: &str = "riq_";
/// 32 characters of `[a-z0-9]`: about 165 bits of OS randomness.
const SECRET_LEN: usize = 32;
/// How much of a key is kept to recognise it (`riq_` and eight more characters).
const DISPLAY_PREFIX_LEN: usize = 12;

pub type SecretHash = [u8; 32];

pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn hashes_match(a: &SecretHash, b: &SecretHash) -> bool {
    a.ct_eq(b).into()
}

/// A freshly issued key. `token` is shown to its creator once and never stored.
pub struct IssuedKey {
    pub key_id: ApiKeyId,
    pub token: String,
    pub secret_hash: SecretHash,
    pub display_prefix: String,
}

pub fn issue_key() -> IssuedKey {
    let key_id = ApiKeyId::generate();
    let suffix = &key_id.as_str()[IdKind::ApiKey.prefix().len()..];
    let secret = ids::random_alphanumeric(SECRET_LEN);
    let token = format!("{KEY_PREFIX}{suffix}_{secret}");
    IssuedKey {
        key_id,
        display_prefix: token[..DISPLAY_PREFIX_LEN].to_string(),
        secret_hash: hash_secret(&secret),
        token,
    }
}

/// A key as presented by a client, split into the record id and the secret to check.
#[derive(Debug, PartialEq, Eq)]
pub struct PresentedKey<'a> {
    pub key_id: ApiKeyId,
    pub secret: &'a str,
}

/// Splits `riq_<id>_<secret>`; anything else is malformed.
pub fn parse_key(token: &str) -> Option<PresentedKey<'_>> {
    let rest = token.strip_prefix(KEY_PREFIX)?;
    let (suffix, secret) = rest.split_once('_')?;
    let key_id = ApiKeyId::parse(&format!("{}{suffix}", IdKind::ApiKey.prefix()))?;
    let well_formed = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    well_formed.then_some(PresentedKey { key_id, secret })
}

/// The admin API's key. Only its hash is kept after start-up.
#[derive(Clone)]
pub struct MasterKey {
    hash: Option<SecretHash>,
}

impl MasterKey {
    /// An empty setting means no master key: the admin API then refuses every request.
    pub fn from_setting(value: &str) -> Self {
        MasterKey {
            hash: (!value.is_empty()).then(|| hash_secret(value)),
        }
    }

    pub fn is_set(&self) -> bool {
        self.hash.is_some()
    }

    pub fn verify(&self, presented: &str) -> bool {
        self.hash
            .as_ref()
            .is_some_and(|hash| hashes_match(hash, &hash_secret(presented)))
    }
}

/// The credential a request carries: `X-API-Key` wins over `Authorization: Bearer`
/// (docs/administration.md).
pub fn presented_credential<'a>(
    x_api_key: Option<&'a str>,
    authorization: Option<&'a str>,
) -> Option<&'a str> {
    if let Some(key) = x_api_key {
        return Some(key.trim());
    }
    let value = authorization?.trim_start();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("bearer") || !rest.starts_with(' ') {
        return None;
    }
    Some(rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_keys_parse_back_and_verify() {
        let key = issue_key();
        assert!(key.token.starts_with("riq_"));
        assert_eq!(key.display_prefix.len(), 12);
        assert!(key.token.starts_with(&key.display_prefix));
        let presented = parse_key(&key.token).unwrap();
        assert_eq!(presented.key_id, key.key_id);
        assert!(hashes_match(
            &hash_secret(presented.secret),
            &key.secret_hash
        ));
        assert!(!hashes_match(&hash_secret("other"), &key.secret_hash));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let good = issue_key().token;
        for bad in [
            "",
            "riq_",
            "riq_xxx",
            "riq_your_key",
            &good.replace("riq_", "rig_"),
            &good[..good.len() - 1],
            &format!("{good}x"),
            &good.to_uppercase(),
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn header_precedence_and_bearer_parsing() {
        assert_eq!(presented_credential(Some("a"), Some("Bearer b")), Some("a"));
        assert_eq!(presented_credential(None, Some("Bearer b")), Some("b"));
        assert_eq!(presented_credential(None, Some("bEaReR    b")), Some("b"));
        assert_eq!(presented_credential(None, Some("Basic b")), None);
        assert_eq!(presented_credential(None, Some("Bearerb")), None);
        assert_eq!(presented_credential(None, None), None);
    }

    #[test]
    fn master_key_checks() {
        let master = MasterKey::from_setting("0123456789abcdef");
        assert!(master.verify("0123456789abcdef"));
        assert!(!master.verify("0123456789abcdeF"));
        let unset = MasterKey::from_setting("");
        assert!(!unset.is_set());
        assert!(!unset.verify(""));
    }
}
