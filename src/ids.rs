//! Identifiers: `<prefix>_` plus random characters from `[a-z0-9]` (docs/design.md), the typed
//! ids of organisations and projects, and the random secrets behind API keys and request ids.
//! All randomness comes from the operating system.

use std::cell::RefCell;
use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Length of the random part of every generated object id.
pub const ID_SUFFIX_LEN: usize = 12;

/// Org and project ids have this many bytes, so that concatenated they form a key prefix.
pub const ID_LEN: usize = 4 + ID_SUFFIX_LEN;

/// `len` characters drawn uniformly from `[a-z0-9]`.
pub fn random_alphanumeric(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        let wanted = &mut buf[..(len - out.len()).min(64)];
        fill_random(wanted);
        // Rejection sampling keeps the distribution uniform: 252 = 7 * 36.
        for &b in wanted.iter().filter(|&&b| b < 252) {
            out.push(ALPHABET[(b % 36) as usize] as char);
        }
    }
    out
}

/// Fills `buf` with bytes from the operating system's random source, drawn from a per-thread
/// pool that fetches them 4 KiB at a time: a request id then costs no system call. Each byte
/// is handed out once, so a drawn byte is as good as one asked of the OS directly.
pub fn fill_random(buf: &mut [u8]) {
    RANDOM_POOL.with_borrow_mut(|pool| pool.fill(buf));
}

thread_local! {
    static RANDOM_POOL: RefCell<RandomPool> = const {
        RefCell::new(RandomPool {
            bytes: [0; RANDOM_POOL_BYTES],
            used: RANDOM_POOL_BYTES,
        })
    };
}

const RANDOM_POOL_BYTES: usize = 4096;

struct RandomPool {
    bytes: [u8; RANDOM_POOL_BYTES],
    /// Bytes already handed out, from the start; all of them when it must be refilled.
    used: usize,
}

impl RandomPool {
    fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            if self.used == RANDOM_POOL_BYTES {
                // getrandom fails only when the OS has no usable random source, which no
                // request can cause; without it no key or id can be issued safely, so there
                // is no fallback.
                getrandom::fill(&mut self.bytes)
                    .expect("the operating system's random number generator failed");
                self.used = 0;
            }
            let n = (out.len() - done).min(RANDOM_POOL_BYTES - self.used);
            out[done..done + n].copy_from_slice(&self.bytes[self.used..self.used + n]);
            // A byte handed out is not kept: a later look at this memory cannot recover it.
            self.bytes[self.used..self.used + n].fill(0);
            self.used += n;
            done += n;
        }
    }
}

/// A new id: `prefix` plus `ID_SUFFIX_LEN` random characters.
pub fn generate(prefix: &str) -> String {
    format!("{prefix}{}", random_alphanumeric(ID_SUFFIX_LEN))
}

/// Whether `id` has the shape of an id with `prefix`. Ids from paths that fail this can never
/// name a stored object, so they are "not found" without a look-up.
pub fn has_shape(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|suffix| {
        suffix.len() == ID_SUFFIX_LEN && suffix.bytes().all(|b| ALPHABET.contains(&b))
    })
}

/// The org-level kinds of object that carry an id, each with its prefix. Project-owned kinds
/// declare theirs with their `Kind` impl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Org,
    Project,
    ApiKey,
    Audit,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Org => "org_",
            IdKind::Project => "prj_",
            IdKind::ApiKey => "key_",
            IdKind::Audit => "aud_",
        }
    }

    pub fn generate(self) -> String {
        generate(self.prefix())
    }

    pub fn matches(self, id: &str) -> bool {
        has_shape(self.prefix(), id)
    }
}

/// Declares the id type of one `IdKind`: a string of that kind's shape, checked where it enters
/// (a request path, stored bytes) and made nowhere else. It is written as the bare string, so
/// the wire and the stored bytes are those of the `String` it stands for; a decoded one is
/// checked like a parsed one (as `Slug` is).
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident = $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                if $kind.matches(&text) {
                    Ok($name(text))
                } else {
                    Err(format!("Must be an id starting with {}", $kind.prefix()))
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl $name {
            pub fn generate() -> Self {
                $name($kind.generate())
            }

            /// `text` as an id, if it has the shape; `None` for anything else, which can never
            /// name a stored object.
            pub fn parse(text: &str) -> Option<Self> {
                $kind.matches(text).then(|| $name(text.to_string()))
            }

            /// An id stored as bytes (an index entry's value, part of a key).
            pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
                std::str::from_utf8(bytes).ok().and_then(Self::parse)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

typed_id! {
    /// An organisation's id, `org_…`.
    OrgId = IdKind::Org
}

typed_id! {
    /// A project's id, `prj_…`.
    ProjectId = IdKind::Project
}

typed_id! {
    /// An org API key's id, `key_…`: the record's id, and the middle of its token.
    ApiKeyId = IdKind::ApiKey
}

pub fn request_id() -> String {
    format!("req_{}", random_alphanumeric(16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::assert_string_newtype;

    #[test]
    fn generated_ids_have_prefix_and_alphabet() {
        for kind in [IdKind::Org, IdKind::Project, IdKind::ApiKey, IdKind::Audit] {
            let id = kind.generate();
            assert!(kind.matches(&id), "{id}");
            assert_eq!(id.len(), kind.prefix().len() + ID_SUFFIX_LEN);
        }
        assert_eq!(IdKind::Org.generate().len(), ID_LEN);
    }

    #[test]
    fn foreign_shapes_do_not_match() {
        assert!(!IdKind::Project.matches("org_abcdefghijkl"));
        assert!(!IdKind::Project.matches("prj_ABCDEFGHIJKL"));
        assert!(!IdKind::Project.matches("prj_short"));
        assert!(!IdKind::Project.matches("prj_abcdefghijkl/"));
    }

    #[test]
    fn typed_ids_parse_only_their_own_shape() {
        let org = OrgId::generate();
        assert_eq!(OrgId::parse(org.as_str()), Some(org.clone()));
        assert_eq!(OrgId::from_bytes(org.as_bytes()), Some(org.clone()));
        assert_eq!(ProjectId::parse(org.as_str()), None);
        assert_eq!(ProjectId::from_bytes(b"prj_\xff\xffcdefghijkl"), None);
        assert_eq!(org.to_string(), org.as_str());
    }

    /// The ids are stored and sent as the strings they replaced: the same postcard and JSON.
    #[test]
    fn typed_ids_encode_as_their_string() {
        assert_string_newtype::<OrgId>("org_abcdefghijkl", "prj_abcdefghijkl");
        assert_string_newtype::<ProjectId>("prj_abcdefghijkl", "prj_abcdefghijk");
        assert_string_newtype::<ApiKeyId>("key_abcdefghijkl", "org_abcdefghijkl");
    }

    #[test]
    fn random_strings_are_distinct() {
        let a = random_alphanumeric(32);
        let b = random_alphanumeric(32);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
